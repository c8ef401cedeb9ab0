#!/usr/bin/env python3
"""Benchmark http-disk-server on loopback, side by side with nginx, in one run.

Prints medians of:
  * 4 KiB PUT latency on one keep-alive connection, with ?flush=n and durable;
  * 1 MiB range GET throughput from one keep-alive curl client (one curl process
    fetching many ranges, so it reuses one connection), against http-disk-server
    and against nginx serving the same file.
and records them in bench/RESULTS.md under "## http-disk-server".

Usage: .venv/bin/python bench/bench_server.py [--size-mib 256] [--runs 5] [--no-write]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import results  # noqa: E402

from nbdsuite.launch import DiskServerProcess, NginxProcess  # noqa: E402

MiB = 1 << 20
SECTION = "## http-disk-server"


def curl_ranges(url: str, size: int, count: int, work: Path) -> float:
    """Fetch ``count`` 1 MiB ranges with one curl process; return bytes per second."""
    cfg = work / "curl.cfg"
    lines = []
    for i in range(count):
        off = (i * MiB) % (size - MiB + 1)
        lines += [f'url = "{url}"', f'range = "{off}-{off + MiB - 1}"',
                  'output = "/dev/null"', 'write-out = "%{num_connects} %{size_download}\\n"',
                  "next"]
    cfg.write_text("\n".join(lines[:-1]) + "\n")
    t0 = time.perf_counter()
    out = subprocess.run(["curl", "-sS", "-f", "-K", str(cfg)], capture_output=True, text=True,
                         timeout=300)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"curl failed against {url}: {out.stderr}")
    rows = [line.split() for line in out.stdout.split("\n") if line.strip()]
    connects = sum(int(r[0]) for r in rows)
    got = sum(int(r[1]) for r in rows)
    if got != count * MiB or connects != 1:
        raise SystemExit(f"{url}: {got} bytes over {connects} connections (expected "
                         f"{count * MiB} over 1)")
    return got / elapsed


def put_latencies(port: int, n: int, flush: bool) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = os.urandom(4096)
    path = "/" if flush else "/?flush=n"
    lat = []
    for i in range(n):
        off = (i * 4096 * 7) % (64 * MiB)
        hdrs = {"Content-Range": f"bytes {off}-{off + 4095}/*", "Content-Length": "4096"}
        t0 = time.perf_counter()
        conn.request("PUT", path, body=body, headers=hdrs)
        r = conn.getresponse()
        r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"PUT failed: {r.status}")
    conn.close()
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ranges", type=int, default=1024, help="1 MiB ranges per curl run")
    ap.add_argument("--puts", type=int, default=1000)
    ap.add_argument("--no-record", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()

    # Under the repo (a real disk), not /tmp, so fdatasync costs what it costs in production.
    base = REPO / "bench" / "work"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="server-", dir=base))
    os.chmod(work, 0o755)   # nginx workers run as an unprivileged user
    procs: list = []
    try:
        img = work / "disk.img"
        size = args.size_mib * MiB
        with open(img, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(MiB))
            os.fsync(f.fileno())
        os.chmod(img, 0o644)
        ours = DiskServerProcess(["--disk", str(img)], work / "server.log", cwd=REPO)
        procs.append(ours)
        nginx = NginxProcess(work, work / "nginx", log_requests=False)
        procs.append(nginx)
        our_port = ours.port
        our_url = ours.url
        nginx_url = nginx.url + "disk.img"

        # Warm both (page cache, first connection), then alternate runs so noise from
        # other work on the machine hits both sides alike.
        curl_ranges(our_url, size, 64, work)
        curl_ranges(nginx_url, size, 64, work)
        ours_gbs, nginx_gbs = [], []
        for _ in range(args.runs):
            ours_gbs.append(curl_ranges(our_url, size, args.ranges, work) / 1e9)
            nginx_gbs.append(curl_ranges(nginx_url, size, args.ranges, work) / 1e9)

        put_latencies(our_port, 50, False)
        nf = put_latencies(our_port, args.puts, False)
        du = put_latencies(our_port, max(100, args.puts // 2), True)
    finally:
        for p in procs:
            try:
                p.stop()
            except TimeoutError:
                pass
        shutil.rmtree(work, ignore_errors=True)

    def ms(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000 if q < 100 else max(xs) * 1000

    g_ours, g_nginx = statistics.median(ours_gbs), statistics.median(nginx_gbs)
    ratio = g_ours / g_nginx
    nf_med, du_med = statistics.median(nf) * 1000, statistics.median(du) * 1000
    rows = [
        ("4 KiB PUT latency, ?flush=n, one keep-alive connection", f"{nf_med:.3f} ms",
         f"p90 {ms(nf, 90):.3f} ms", "< 2 ms", "yes" if nf_med < 2 else "NO"),
        ("4 KiB PUT latency, durable (fdatasync), one connection", f"{du_med:.3f} ms",
         f"p90 {ms(du, 90):.3f} ms", "< 5 ms", "yes" if du_med < 5 else "NO"),
        ("1 MiB range GET, one keep-alive curl: http-disk-server", f"{g_ours:.2f} GB/s",
         f"runs {', '.join(f'{x:.2f}' for x in ours_gbs)}", "", ""),
        ("1 MiB range GET, one keep-alive curl: nginx (same file)", f"{g_nginx:.2f} GB/s",
         f"runs {', '.join(f'{x:.2f}' for x in nginx_gbs)}", "", ""),
        ("ratio http-disk-server / nginx", f"{ratio:.2f}", "", ">= 0.50",
         "yes" if ratio >= 0.5 else "NO"),
    ]
    cmd = ".venv/bin/python bench/bench_server.py" + (
        "" if sys.argv[1:] == [] else " " + " ".join(sys.argv[1:]))
    table = ["| measure | median | spread | target | met |", "|---|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    text = (f"Command: `{cmd}`\n\n"
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on loopback, "
            f"{args.size_mib} MiB file on ext4, {args.runs} alternating curl runs of "
            f"{args.ranges} x 1 MiB ranges each (one connection per run, checked), "
            f"{len(nf)} + {len(du)} PUTs.\n\n" + "\n".join(table) + "\n")
    print(text)
    if not args.no_record:
        results.record(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
