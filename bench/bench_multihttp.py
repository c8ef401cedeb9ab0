#!/usr/bin/python3
"""Benchmark: multihttp plugin vs nbdkit's C curl plugin, against one http-disk-server.

    /usr/bin/python3 bench/bench_multihttp.py [--size 256M] [--repeat 3] [--seconds 3]

Run with Debian's python3 (or the project venv): libnbd's Python bindings are
used for the QD1 random loops.  Prints a table and writes the section
"multihttp plugin" of bench/RESULTS.md.  Figures are medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nbd  # noqa: E402
import results  # noqa: E402

from nbdsuite.launch import DiskServerProcess, NbdkitProcess  # noqa: E402
from nbdsuite.sizes import parse_size  # noqa: E402

PLUGIN = str(REPO / "plugins" / "multihttp.py")
SECTION = "## multihttp plugin"


class Server(DiskServerProcess):
    """http-disk-server on ``disk``, ready once it printed ``Server ready!``."""

    def __init__(self, disk: Path):
        super().__init__(["--disk", str(disk)], Path(str(disk) + f".{id(self)}.log"), cwd=REPO)

    def kill(self) -> None:  # SIGKILL and reap
        super().kill()


class Nbdkit(NbdkitProcess):
    def __init__(self, work: Path, name: str, args: list[str], readonly=False,
                 threads: int | None = None):
        opts = (["-r"] if readonly else []) + (["--threads", str(threads)] if threads else [])
        super().__init__(work, args, options=opts, name=name, timeout=15)

    def stop(self) -> None:  # type: ignore[override]
        try:
            super().stop(15)
        except TimeoutError:
            pass


def nbdcopy_seconds(src: str, dst: str) -> float:
    t0 = time.monotonic()
    subprocess.run(["nbdcopy", src, dst], check=True, timeout=600)
    return time.monotonic() - t0


def qd1_rate(uri: str, size: int, seconds: float, write: bool) -> float:
    """4 KiB requests, one at a time, at random aligned offsets: ops per second."""
    h = nbd.NBD()
    h.connect_uri(uri)
    rnd = random.Random(1)
    buf = os.urandom(4096)
    blocks = size // 4096
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        off = rnd.randrange(blocks) * 4096
        if write:
            h.pwrite(buf, off)
        else:
            h.pread(4096, off)
        n += 1
    rate = n / (time.monotonic() - t0)
    h.shutdown()
    return rate


def failover_seconds(work: Path, disk: Path, run: int) -> float:
    """Kill the active server (SIGKILL) while QD1 reads run; time to the next completion."""
    a, b = Server(disk), Server(disk)
    # Default parameters: retries=2, retry-delay=0.1 (0.1 + 0.2 s of backoff
    # on the dead server before moving on).
    k = Nbdkit(work, f"failover{run}", ["python", PLUGIN, f"urls={a.url},{b.url}"])
    h = nbd.NBD()
    h.connect_uri(k.uri)
    spans: list[tuple[float, float]] = []
    stop = threading.Event()

    def loop():
        rnd = random.Random(2)
        while not stop.is_set():
            t0 = time.monotonic()
            h.pread(4096, rnd.randrange(1024) * 4096)
            spans.append((t0, time.monotonic()))
    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.5)
    a.kill()                      # SIGKILL and reap: from here on A is gone
    dead = time.monotonic()
    time.sleep(1.5)
    stop.set()
    t.join(30)
    h.shutdown()
    k.stop()
    b.kill()
    # The stall a client sees: for each request finishing after A died, the
    # time it waited since A died (or since it started, if later).  The worst
    # one is the request that had to fail over.
    after = [end - max(start, dead) for start, end in spans if end > dead]
    return max(after) if after else float("inf")


def client_choice(url: str, port: int, seconds: float) -> dict[str, float]:
    """The data-path HTTP client, measured in-process on one keep-alive connection:
    4 KiB ranged GETs per second and 4 MiB ranged GET throughput."""
    import http.client

    import requests

    from multihttp import request as mreq
    from multihttp.server import Endpoint
    from multihttp.wire import Connection

    small, big = memoryview(bytearray(4096)), memoryview(bytearray(4 << 20))
    out: dict[str, float] = {}

    def timed(fn, n):
        t0 = time.perf_counter()
        count = 0
        while time.perf_counter() - t0 < seconds:
            fn(n, count)
            count += 1
        return count / (time.perf_counter() - t0)

    sess = requests.Session()

    def req(n, i):
        off = (i * n) % (64 << 20)
        r = sess.get(url, headers={"Range": f"bytes={off}-{off + n - 1}"})
        body = r.content
        (small if n == 4096 else big)[:len(body)] = body
    hc = http.client.HTTPConnection("127.0.0.1", port)

    def hcl(n, i):
        off = (i * n) % (64 << 20)
        hc.request("GET", "/", headers={"Range": f"bytes={off}-{off + n - 1}"})
        r = hc.getresponse()
        buf = small if n == 4096 else big
        pos = 0
        while pos < n:
            pos += r.readinto(buf[pos:])
    wc = Connection.open("127.0.0.1", port, 5, 30)

    def wire(n, i):
        off = (i * n) % (64 << 20)
        mreq.get_range(wc, Endpoint("/", None, url), small if n == 4096 else big, off, None)
    for name, fn in (("requests (.content)", req), ("http.client (readinto)", hcl),
                     ("multihttp.wire (readinto)", wire)):
        out[f"client {name}: 4K GET/s"] = timed(fn, 4096)
        out[f"client {name}: 4M GET MB/s"] = timed(fn, 4 << 20) * (4 << 20) / 1e6
    return out


def mbps(size: int, secs: float) -> float:
    return size / secs / 1e6


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="256M")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--no-results", action="store_true", help="do not update bench/RESULTS.md")
    a = ap.parse_args()
    size = parse_size(a.size)
    work = Path(tempfile.mkdtemp(prefix="bench-multihttp-"))
    disk = work / "disk.img"
    with open(disk, "wb") as f:
        for _ in range(size // (16 << 20)):
            f.write(os.urandom(16 << 20))
    src = work / "src.img"
    shutil.copyfile(disk, src)
    srv = Server(disk)
    mh = Nbdkit(work, "multihttp", ["python", PLUGIN, f"urls={srv.url}"])
    mh_ro = Nbdkit(work, "multihttp-ro", ["python", PLUGIN, f"urls={srv.url}"], readonly=True)
    mh_t4 = Nbdkit(work, "multihttp-t4", ["python", PLUGIN, f"urls={srv.url}"], readonly=True,
                   threads=4)
    curl = Nbdkit(work, "curl", ["curl", f"url={srv.url}"], readonly=True)
    res: dict[str, list[float]] = {}

    def add(key, val):
        res.setdefault(key, []).append(val)
    try:
        for i in range(a.repeat):
            print(f"bench: run {i + 1}/{a.repeat}", file=sys.stderr, flush=True)
            add("curl seq read MB/s", mbps(size, nbdcopy_seconds(curl.uri, "null:")))
            add("multihttp seq read MB/s", mbps(size, nbdcopy_seconds(mh_ro.uri, "null:")))
            add("multihttp seq write MB/s", mbps(size, nbdcopy_seconds(str(src), mh.uri)))
            add("curl 4K rand read QD1 IOPS", qd1_rate(curl.uri, size, a.seconds, False))
            add("multihttp 4K rand read QD1 IOPS", qd1_rate(mh.uri, size, a.seconds, False))
            add("multihttp 4K rand write QD1 IOPS", qd1_rate(mh.uri, size, a.seconds, True))
            add("multihttp --threads 4: seq read MB/s",
                mbps(size, nbdcopy_seconds(mh_t4.uri, "null:")))
            add("multihttp --threads 4: 4K rand read QD1 IOPS",
                qd1_rate(mh_t4.uri, size, a.seconds, False))
            for k, v in client_choice(srv.url, srv.port, min(a.seconds, 2.0)).items():
                add(k, v)
    finally:
        for k in (mh, mh_ro, mh_t4, curl):
            k.stop()
        srv.stop()
    for i in range(a.repeat):
        add("failover: longest request stall after SIGKILL (s)", failover_seconds(work, disk, i))
    med = {k: statistics.median(v) for k, v in res.items()}
    # Ratios pair each run with the curl figure of the same run, then take the median.
    ratio_seq = statistics.median(m / c for m, c in zip(res["multihttp seq read MB/s"],
                                                        res["curl seq read MB/s"], strict=True))
    ratio_rand = statistics.median(m / c for m, c in zip(
        res["multihttp 4K rand read QD1 IOPS"], res["curl 4K rand read QD1 IOPS"], strict=True))
    ratio_seq4 = statistics.median(m / c for m, c in zip(
        res["multihttp --threads 4: seq read MB/s"], res["curl seq read MB/s"], strict=True))
    ratio_rand4 = statistics.median(m / c for m, c in zip(
        res["multihttp --threads 4: 4K rand read QD1 IOPS"], res["curl 4K rand read QD1 IOPS"],
        strict=True))
    rows = [(k, f"{v:.3f}" if "(s)" in k else f"{v:.0f}",
             ", ".join(f"{x:.3f}" if "(s)" in k else f"{x:.0f}" for x in res[k]))
            for k, v in med.items()]
    rows.append(("seq read ratio multihttp/curl (target >= 0.6)", f"{ratio_seq:.2f}", ""))
    rows.append(("4K QD1 read ratio multihttp/curl (target >= 0.5)", f"{ratio_rand:.2f}", ""))
    rows.append(("same ratios with --threads 4: seq / 4K QD1", f"{ratio_seq4:.2f} / "
                 f"{ratio_rand4:.2f}", ""))
    cmd = "/usr/bin/python3 bench/bench_multihttp.py " + " ".join(sys.argv[1:])
    lines = [SECTION, "",
             f"Command: `{cmd.strip()}` (disk {a.size}, medians of {a.repeat} runs; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
             "", ("Same http-disk-server process for both plugins, loopback, 2 cores "
                  "(servers, nbdkit and client share them). Sequential: `nbdcopy` "
                  "(multihttp advertises multi-conn, so nbdcopy opens one connection per core; "
                  "the 1.32 curl plugin gets 1). Random: a libnbd Python loop, 4 KiB aligned, "
                  "queue depth 1, one connection. Failover: two servers over one file, "
                  "SIGKILL of the active one during QD1 reads, default plugin parameters. "
                  "Client rows: one keep-alive connection in one Python process, no nbdkit, "
                  "same server (the data-path client choice)."),
             "", "| measurement | median | runs |", "|---|---|---|"]
    lines += [f"| {k} | {m} | {r} |" for k, m, r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.no_results:
        shutil.rmtree(work, ignore_errors=True)
        return 0
    results.record(SECTION, text.split("\n", 1)[1])
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
