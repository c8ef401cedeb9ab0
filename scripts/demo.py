#!/usr/bin/env python3
"""`make demo`: the whole suite on a built-in sample, end to end.

Part 1 builds a small ext4 disk image with real files in it, packs it into a
Hexz snapshot with the `hexz` package, serves the snapshot with
`nbdkit python plugins/hexz.py` on a Unix socket, reads it back with nbdinfo
and nbdcopy and checks that every byte matches.

Part 2 serves the same snapshot from nginx on 127.0.0.1 through `hexz.py url=`: only
compressed bytes cross the wire, and every byte read back is checked again.

Part 3 serves a writable copy of the image from two http-disk-server
processes (two "replicas" over one file), attaches it through
`nbdkit python plugins/multihttp.py`, writes and reads through NBD, kills the
active server in the middle and shows the I/O going on against the other one.

Part 4 serves the snapshot, the image and a folder archive of the files as a read-only
S3 bucket (http-disk-server --s3) and reads them back with boto3 and nbdkit's S3 plugin.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbdsuite.launch import (  # noqa: E402
    DiskServerProcess,
    NbdkitProcess,
    NginxProcess,
    nbdkit_env,
)

ROOT = Path(__file__).resolve().parent.parent
HEXZ_PLUGIN = ROOT / "plugins" / "hexz.py"
MULTIHTTP_PLUGIN = ROOT / "plugins" / "multihttp.py"
MiB = 1 << 20

WORDS = (
    "block device snapshot replica volume sector extent cluster journal inode superblock "
    "checksum compress decompress parent child thin dedup stream memory disk export socket"
).split()


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def fact(name: str, value: object) -> None:
    print(f"   {name:<28} {value}", flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def make_sample_tree(folder: Path, seed: int = 1) -> int:
    """Generated files with the mix a real disk has: text, binary, zeros."""
    rng = random.Random(seed)
    total = 0
    for i in range(40):
        sub = folder / f"docs/chapter{i // 10}"
        sub.mkdir(parents=True, exist_ok=True)
        lines = (
            " ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randint(50, 2000))
        )
        text = "\n".join(lines).encode()
        (sub / f"notes{i}.txt").write_bytes(text)
        total += len(text)
    blobs = folder / "blobs"
    blobs.mkdir()
    for i in range(4):
        data = rng.randbytes(rng.randint(1, 3) * MiB + rng.randint(0, 4095))
        (blobs / f"random{i}.bin").write_bytes(data)
        total += len(data)
    (blobs / "zeros.bin").write_bytes(bytes(4 * MiB))
    return total + 4 * MiB


def make_ext4_image(image: Path, tree: Path, size_mib: int) -> None:
    with open(image, "wb") as f:
        f.truncate(size_mib * MiB)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", "hexzdemo", "-d", str(tree), str(image)],
        check=True,
        timeout=120,
    )


@contextmanager
def nbdkit(work: Path, name: str, plugin: Path, *params: str):
    """nbdkit in the foreground on a Unix socket; its messages go to NAME.log."""
    proc = NbdkitProcess(work, ["python", str(plugin), *params], name=name)
    try:
        yield proc.uri
    finally:
        proc.stop(30)


def read_all(h, size: int) -> bytes:
    chunk = 4 * MiB
    return b"".join(h.pread(min(chunk, size - off), off) for off in range(0, size, chunk))


def part_hexz(work: Path, image: Path) -> None:
    import hexz  # test dependency; the plugin itself reads the format in Python

    step("Part 1: serve a Hexz snapshot over NBD")
    snapshot = work / "sample.hxz"
    t = time.perf_counter()
    hexz.pack(str(image), str(snapshot), compression="lz4")
    pack_s = time.perf_counter() - t
    fact("image (ext4)", f"{image.stat().st_size / MiB:.1f} MiB")
    fact("snapshot (LZ4)", f"{snapshot.stat().st_size / MiB:.1f} MiB, packed in {pack_s:.2f} s")

    with nbdkit(work, "hexz", HEXZ_PLUGIN, f"file={snapshot}") as uri:
        fact("NBD URI", uri)
        info = subprocess.run(
            ["nbdinfo", "--json", uri], capture_output=True, text=True, check=True, timeout=30
        ).stdout
        import json

        export = json.loads(info)["exports"][0]
        fact("export size (nbdinfo)", f"{export['export-size']} bytes")
        fact(
            "read-only / multi-conn",
            f"{export.get('is_read_only')} / {export.get('can_multi_conn')}",
        )
        mapping = subprocess.run(
            ["nbdinfo", "--map", "--totals", uri],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for line in mapping.strip().splitlines():
            fact("extents (nbdinfo --totals)", line.strip())
        copy = work / "copy.img"
        copy.unlink(missing_ok=True)
        t = time.perf_counter()
        subprocess.run(["nbdcopy", uri, str(copy)], check=True, timeout=300)
        copy_s = time.perf_counter() - t
        size = image.stat().st_size
        fact("nbdcopy throughput", f"{size / copy_s / 1e6:.0f} MB/s ({copy_s:.2f} s)")
        same = sha256_file(copy) == sha256_file(image)
        fact("bytes match the image", "yes" if same else "NO")
        if not same:
            raise SystemExit("demo: the bytes served differ from the image")


def part_remote(work: Path, image: Path) -> None:
    step("Part 2: the same snapshot from a web server (nginx), through hexz.py url=")
    www = work / "www"
    www.mkdir(exist_ok=True)
    shutil.copyfile(work / "sample.hxz", www / "sample.hxz")
    ng = NginxProcess(www, work / "nginx")
    try:
        url = f"{ng.url}sample.hxz"
        with nbdkit(work, "hexz-url", HEXZ_PLUGIN, f"url={url}") as uri:
            fact("archive URL", url)
            copy = work / "copy-url.img"
            copy.unlink(missing_ok=True)
            t = time.perf_counter()
            subprocess.run(["nbdcopy", uri, str(copy)], check=True, timeout=300)
            copy_s = time.perf_counter() - t
            size = image.stat().st_size
            fact("nbdcopy throughput", f"{size / copy_s / 1e6:.0f} MB/s ({copy_s:.2f} s)")
        sent = sum(r[3] for r in ng.requests())
        fact("bytes from nginx", f"{sent / MiB:.1f} MiB in {len(ng.requests())} requests "
             f"(archive {(www / 'sample.hxz').stat().st_size / MiB:.1f} MiB, image "
             f"{size / MiB:.1f} MiB)")
        same = sha256_file(copy) == sha256_file(image)
        fact("bytes match the image", "yes" if same else "NO")
        if not same:
            raise SystemExit("demo: the bytes served through url= differ from the image")
    finally:
        ng.stop()


def live_failover(
    h, victim: DiskServerProcess, size: int, model: bytearray, rng: random.Random
) -> float:
    """Stream 4 KiB writes and reads, SIGKILL the active server in the middle.

    Returns the longest time a request took once the server was dead.
    """
    spans: list[tuple[float, float]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def stream() -> None:
        try:
            while not stop.is_set():
                off = rng.randrange(0, size // 4096) * 4096
                data = rng.randbytes(4096)
                t = time.monotonic()
                h.pwrite(data, off)
                model[off : off + 4096] = data
                if h.pread(4096, off) != data:
                    raise AssertionError(f"read after write at {off} returned other bytes")
                spans.append((t, time.monotonic()))
        except BaseException as e:  # reported by the caller
            failures.append(e)

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(0.3)
    victim.kill()
    dead = time.monotonic()
    time.sleep(1.5)
    stop.set()
    worker.join(60)
    if failures or worker.is_alive():
        raise SystemExit(f"demo: I/O failed during failover: {failures or 'hung'}")
    return max((end - max(start, dead) for start, end in spans if end > dead), default=0.0)


def part_http(work: Path, image: Path) -> None:
    import nbd

    step("Part 3: one disk behind two http-disk-servers, through the multihttp plugin")
    disk = work / "replica.img"
    shutil.copyfile(image, disk)
    # Storage drivers wait for each server's `Server ready!` line; so does the launcher.
    servers = [DiskServerProcess(["--disk", str(disk)], work / f"server{i}.log")
               for i in range(2)]
    urls = ",".join(s.url for s in servers)
    fact("servers", urls)
    size = disk.stat().st_size
    rng = random.Random(7)
    model = bytearray(image.read_bytes())
    try:
        with nbdkit(
            work, "http", MULTIHTTP_PLUGIN, f"urls={urls}", "timeout=5", "connect-timeout=1"
        ) as uri:
            h = nbd.NBD()
            h.connect_uri(uri)
            t = time.perf_counter()
            writes = 256
            for _ in range(writes):
                off = rng.randrange(0, size // 4096) * 4096
                data = rng.randbytes(4096)
                h.pwrite(data, off)
                model[off : off + 4096] = data
            w_s = time.perf_counter() - t
            fact("4 KiB writes", f"{writes / w_s:.0f} per second (durable)")
            got = read_all(h, size)
            fact("read-back matches", "yes" if got == model else "NO")
            t = time.perf_counter()
            subprocess.run(["nbdcopy", uri, "null:"], check=True, timeout=300)
            fact("sequential read (nbdcopy)", f"{size / (time.perf_counter() - t) / 1e6:.0f} MB/s")

            stall = live_failover(h, servers[0], size, model, rng)
            fact(
                "server 1 killed mid-stream",
                f"every request completed; longest stall {stall * 1000:.0f} ms",
            )
            got = read_all(h, size)
            h.shutdown()
        same = disk.read_bytes() == bytes(model)
        fact("NBD read-back after failover", "matches" if got == model else "DIFFERS")
        fact("disk file equals the model", "yes" if same else "NO")
        if not same or got != model:
            raise SystemExit("demo: the HTTP chain returned wrong bytes")
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.stop(timeout=30)


def part_s3(work: Path, image: Path, tree: Path) -> None:
    import os
    import secrets

    import boto3
    import hexz
    from botocore.config import Config

    step("Part 4: the snapshot as a read-only S3 bucket (http-disk-server --s3)")
    bucket = work / "bucket"
    bucket.mkdir()
    shutil.copyfile(work / "sample.hxz", bucket / "sample.hxz")
    shutil.copyfile(image, bucket / "sample.img")
    hexz.pack(str(tree), str(bucket / "files.hxz"), compression="zstd")
    access, secret = "AKID" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    creds = work / "s3-credentials"
    creds.write_text(f"[default]\naws_access_key_id = {access}\n"
                     f"aws_secret_access_key = {secret}\n")
    creds.chmod(0o600)
    server = DiskServerProcess(["--s3", str(bucket), "--bucket", "demo", "--credentials",
                                str(creds)], work / "s3-server.log", cwd=ROOT)
    try:
        url = server.url.rstrip("/")
        fact("endpoint", f"{url} (bucket demo, SigV4 keys from {creds.name})")
        s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=access,
                          aws_secret_access_key=secret,
                          config=Config(signature_version="s3v4", region_name="us-east-1",
                                        retries={"max_attempts": 1}, read_timeout=60))
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="demo")
        keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        fact("objects (ListObjectsV2)", f"{len(keys)}, e.g. {', '.join(keys[:3])}")
        t = time.perf_counter()
        body = s3.get_object(Bucket="demo", Key="sample.hxz/disk")["Body"].read()
        get_s = time.perf_counter() - t
        same = hashlib.sha256(body).hexdigest() == sha256_file(image)
        fact("GetObject sample.hxz/disk", f"{len(body) / get_s / 1e6:.0f} MB/s, "
             f"{'matches' if same else 'DIFFERS from'} the image")
        member = next(k for k in keys if k.startswith("files.hxz/files/blobs/random"))
        part = s3.get_object(Bucket="demo", Key=member, Range="bytes=1000-1999")
        rel = member.split("/files/", 1)[1]
        ok_range = part["Body"].read() == (tree / rel).read_bytes()[1000:2000]
        fact("ranged GetObject of a member", f"{part['ContentRange']}, "
             f"{'matches' if ok_range else 'DIFFERS'}")
        env = nbdkit_env({k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
        env.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION="us-east-1")
        copy = work / "s3-copy.img"
        t = time.perf_counter()
        subprocess.run(["nbdkit", "-U", "-", "-r", "S3", f"endpoint-url={url}", "bucket=demo",
                        "key=sample.hxz/disk", "--run", f'nbdcopy "$uri" {copy}'],
                       env=env, check=True, timeout=600)
        nbd_s = time.perf_counter() - t
        ok_nbd = sha256_file(copy) == sha256_file(image)
        fact("nbdkit S3 plugin + nbdcopy", f"{copy.stat().st_size / nbd_s / 1e6:.0f} MB/s, "
             f"{'matches' if ok_nbd else 'DIFFERS'}")
        try:
            s3.put_object(Bucket="demo", Key="sample.img", Body=b"x")
            refused = "NO"
        except s3.exceptions.ClientError as e:
            refused = e.response["Error"]["Code"]
        fact("PutObject", f"refused: {refused}")
        if not (same and ok_range and ok_nbd) or refused == "NO":
            raise SystemExit("demo: the S3 gateway returned wrong bytes or took a write")
    finally:
        server.stop(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=str(ROOT / "demo-work"))
    parser.add_argument("--image-mib", type=int, default=64)
    parser.add_argument("--skip-http", action="store_true",
                        help="skip the remote snapshot and multihttp parts")
    parser.add_argument("--skip-s3", action="store_true", help="skip the S3 gateway part")
    args = parser.parse_args()

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    step("Building the sample: an ext4 filesystem made by mkfs.ext4 -d from generated files")
    tree = work / "tree"
    tree.mkdir()
    content = make_sample_tree(tree)
    image = work / "sample.img"
    make_ext4_image(image, tree, args.image_mib)
    fact("files in the filesystem", f"{content / MiB:.1f} MiB")
    part_hexz(work, image)
    if not args.skip_http:
        part_remote(work, image)
        part_http(work, image)
    if not args.skip_s3:
        part_s3(work, image, tree)
    print("\nDemo finished: all bytes matched.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
