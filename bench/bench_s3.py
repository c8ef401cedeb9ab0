#!/usr/bin/env python3
"""S3 gateway figures: GetObject of 1 MiB ranges of a snapshot's disk over S3 against the
plain /disk route on the same archive, signed against unsigned on the same gateway, boto3
GetObject of the snapshot against the raw image, and nbdkit's S3 plugin through the gateway
against the multihttp plugin through /disk. Records "## S3 gateway" in bench/RESULTS.md.

Every series alternates its candidates (A B C A B C ...) and reports the median and the
spread. One ``--s3`` server runs with both ``--credentials`` and ``--s3-anonymous``, so
signed and unsigned requests hit the same process; ``--snapshot`` serves /disk beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import hexz
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import results  # noqa: E402

from nbdsuite.launch import DiskServerProcess, cpu_seconds, nbdkit_env  # noqa: E402

SECTION = "## S3 gateway"
MiB = 1 << 20


def make_image(path: Path, mib: int, seed: int = 3) -> None:
    """Random, text-like and zero MiBs mixed, as a used disk is."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(mib):
            kind = i % 4
            if kind == 0:
                f.write(rnd.randbytes(MiB))
            elif kind == 1:
                f.write(bytes(MiB))
            else:
                f.write((b"block %08d " % i) * (MiB // 15) + bytes(MiB % 15))


def ranges_rate(get, size: int, count: int, seed: int) -> float:
    """MB/s of ``count`` random aligned 1 MiB ranges, each checked for length."""
    rnd = random.Random(seed)
    t = time.perf_counter()
    for _ in range(count):
        off = rnd.randrange(size // MiB) * MiB
        n = len(get(off))
        if n != MiB:
            raise SystemExit(f"short range: {n} bytes at {off}")
    return count * MiB / (time.perf_counter() - t) / 1e6


def nbd_rate(plugin: list[str], env: dict[str, str], size: int, work: Path) -> float:
    """MB/s of nbdcopy reading the whole export to null: (timed inside --run)."""
    stamp = work / "nbd-time"
    script = (f'a=$(date +%s.%N); nbdcopy "$uri" null: && b=$(date +%s.%N) && '
              f'echo "$a $b" > {stamp}')
    subprocess.run(["nbdkit", "-U", "-", "-r", *plugin, "--run", script], env=env,
                   check=True, timeout=900, cwd=REPO)
    a, b = map(float, stamp.read_text().split())
    return size / (b - a) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ranges", type=int, default=256, help="1 MiB ranges per run")
    ap.add_argument("--no-record", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="s3-"))
    procs: list = []
    try:
        bucket = work / "bucket"
        bucket.mkdir()
        make_image(bucket / "raw.img", args.size_mib)
        hexz.pack(str(bucket / "raw.img"), str(bucket / "vm.hxz"), compression="lz4")
        access, secret = "AKID" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
        creds = work / "creds"
        creds.write_text(f"[b]\naws_access_key_id = {access}\n"
                         f"aws_secret_access_key = {secret}\n")
        creds.chmod(0o600)
        gw = DiskServerProcess(["--s3", str(bucket), "--bucket", "bench", "--credentials",
                                str(creds), "--s3-anonymous"], work / "s3.log", cwd=REPO)
        procs.append(gw)
        snap = DiskServerProcess(["--snapshot", str(bucket / "vm.hxz")], work / "snap.log",
                                 cwd=REPO)
        procs.append(snap)
        s3_url, disk_url = gw.url.rstrip("/"), snap.url + "disk"
        session = requests.Session()
        signer = S3SigV4Auth(Credentials(access, secret), "s3", "us-east-1")

        def plain(off: int) -> bytes:
            r = session.get(disk_url, headers={"Range": f"bytes={off}-{off + MiB - 1}"},
                            timeout=30)
            return r.content

        def unsigned(off: int) -> bytes:
            r = session.get(f"{s3_url}/bench/vm.hxz/disk",
                            headers={"Range": f"bytes={off}-{off + MiB - 1}"}, timeout=30)
            return r.content

        def signed(off: int) -> bytes:
            req = AWSRequest("GET", f"{s3_url}/bench/vm.hxz/disk",
                             headers={"Range": f"bytes={off}-{off + MiB - 1}",
                                      "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
            signer.add_auth(req)
            r = session.get(req.url, headers=dict(req.headers.items()), timeout=30)
            if r.status_code != 206:
                raise SystemExit(f"signed GET: {r.status_code} {r.text[:200]}")
            return r.content

        s3 = boto3.client("s3", endpoint_url=s3_url, aws_access_key_id=access,
                          aws_secret_access_key=secret,
                          config=Config(signature_version="s3v4", region_name="us-east-1",
                                        retries={"max_attempts": 1}, read_timeout=60))

        def boto(key: str):
            def get(off: int) -> bytes:
                return s3.get_object(Bucket="bench", Key=key,
                                     Range=f"bytes={off}-{off + MiB - 1}")["Body"].read()
            return get

        for fn in (plain, unsigned, signed, boto("vm.hxz/disk"), boto("raw.img")):
            ranges_rate(fn, size, 16, 0)   # warm caches and connections
        seeds = iter(range(1, 10_000))
        cpu: dict[str, list[float]] = {}

        def run(name: str, fn, pid: int):
            def measure() -> float:
                c0 = cpu_seconds(pid)
                rate = ranges_rate(fn, size, args.ranges, next(seeds))
                cpu.setdefault(name, []).append((cpu_seconds(pid) - c0) / args.ranges * 1e6)
                return rate
            return measure

        candidates = {
            "/disk route (--snapshot), requests": (plain, snap.pid),
            "S3 GetObject unsigned, requests": (unsigned, gw.pid),
            "S3 GetObject SigV4, requests + botocore signer": (signed, gw.pid),
            "boto3 get_object, snapshot vm.hxz/disk": (boto("vm.hxz/disk"), gw.pid),
            "boto3 get_object, raw image raw.img": (boto("raw.img"), gw.pid),
        }
        ranges = results.alternate({n: run(n, fn, pid) for n, (fn, pid) in
                                    candidates.items()}, args.runs)

        env = nbdkit_env({k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
        env.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION="us-east-1")
        s3_plugin = ["S3", f"endpoint-url={s3_url}", "bucket=bench", "key=vm.hxz/disk"]
        mh_plugin = ["python", str(REPO / "plugins" / "multihttp.py"), f"urls={disk_url}"]
        nbd = results.alternate({
            "nbdkit S3 plugin -> gateway vm.hxz/disk": lambda: nbd_rate(s3_plugin, env, size,
                                                                        work),
            "nbdkit multihttp plugin -> /disk": lambda: nbd_rate(mh_plugin, env, size, work),
        }, max(2, args.runs // 2))
    finally:
        for p in procs:
            try:
                p.stop()
            except TimeoutError:
                pass
        shutil.rmtree(work, ignore_errors=True)

    names = list(ranges)
    sig_cost = 1 - results.median(ranges[names[2]]) / results.median(ranges[names[1]])
    sig_cpu = results.median(cpu[names[2]]) / results.median(cpu[names[1]]) - 1
    rows = [f"| {n} | {results.spread(v, '{:.0f}')} | "
            f"{results.spread(cpu[n], '{:.0f}') if n in cpu else ''} |"
            for n, v in {**ranges, **nbd}.items()]
    cmd = ".venv/bin/python bench/bench_s3.py" + (
        "" if not sys.argv[1:] else " " + " ".join(sys.argv[1:]))
    text = (f"Command: `{cmd}`\n\n"
            f"Run {results.stamp()} on loopback: a {args.size_mib} MiB image (random, zero and "
            f"text MiBs) packed with hexz (LZ4); {args.runs} alternating runs of "
            f"{args.ranges} random 1 MiB ranges on one keep-alive connection per client; "
            f"nbdcopy of the whole disk to null:. Server CPU is the serving process's user + "
            f"system time per request. The /disk route is a --snapshot server on the same "
            f"archive beside the --s3 one (a gateway has no /disk route).\n\n"
            "| candidate | MB/s, median (min-max) | server CPU us/request |\n|---|---|---|\n"
            + "\n".join(rows) + "\n\n"
            f"Signature checking, signed against unsigned on the same gateway: throughput "
            f"{-sig_cost * 100:+.1f}% (client signing included), server CPU per request "
            f"{sig_cpu * 100:+.1f}% (target: a cost under 10%).\n")
    print(text)
    if not args.no_record:
        results.record(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
