"""The HTTP chain, live: two http-disk-servers, the multihttp plugin, NBD I/O, failover.

    python -m multihttp.demo [--disk FILE] [--workdir DIR]

Meant to be called by the project's demo (``make demo``).  Without --disk it
makes a 64 MiB sample.  Prints what happens and the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "multihttp.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(disk: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("http-disk-server", path=str(Path(sys.executable).parent)) or \
        shutil.which("http-disk-server")
    if exe is None:
        raise SystemExit("demo: http-disk-server is not installed")
    port = _free_port()
    p = subprocess.Popen([exe, "--disk", str(disk), "--ip", "127.0.0.1", "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    for line in p.stdout:
        if line.rstrip().endswith("Server ready!") or time.monotonic() > deadline:
            break
    threading.Thread(target=p.stdout.read, daemon=True).start()
    return p, f"http://127.0.0.1:{port}/"


def run(disk: Path, work: Path) -> int:
    import nbd

    s1, url1 = _server(disk)
    s2, url2 = _server(disk)
    sock, pidfile = work / "demo.sock", work / "demo.pid"
    h = nbd.NBD()
    log = open(work / "nbdkit.log", "w")
    k = subprocess.Popen(["nbdkit", "-f", "-U", str(sock), "-P", str(pidfile),
                          "--exit-with-parent", "python", str(PLUGIN), f"urls={url1},{url2}"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists():
            if k.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"demo: nbdkit did not start, see {log.name}")
            time.sleep(0.02)
        print(f"servers: {url1} and {url2} over {disk}")
        print(f"nbdkit multihttp on nbd+unix:///?socket={sock}")
        h.connect_unix(str(sock))
        size = h.get_size()
        payload = os.urandom(4 << 20)
        h.pwrite(payload, 1 << 20)
        h.flush()
        assert h.pread(len(payload), 1 << 20) == payload
        print(f"wrote and read back 4 MiB through NBD (disk {size >> 20} MiB): OK")
        t0 = time.monotonic()
        subprocess.run(["nbdcopy", f"nbd+unix:///?socket={sock}", "null:"], check=True,
                       timeout=300)
        print(f"sequential read (nbdcopy): {size / (time.monotonic() - t0) / 1e6:.0f} MB/s")
        t0, n = time.monotonic(), 0
        block = os.urandom(4096)
        while time.monotonic() - t0 < 1.0:
            # In the second half of the disk, away from the 4 MiB checked below.
            h.pwrite(block, size // 2 + (n * 4096 * 97) % (size // 2 - 4096))
            n += 1
        print(f"4 KiB writes, one connection, queue depth 1: {n / (time.monotonic() - t0):.0f}/s")
        spans: list[tuple[float, float]] = []
        stop = threading.Event()

        def reader():
            i = 0
            while not stop.is_set():
                t = time.monotonic()
                assert h.pread(4096, 1 << 20) == payload[:4096]
                spans.append((t, time.monotonic()))
                i += 1
        th = threading.Thread(target=reader)
        th.start()
        time.sleep(0.3)
        s1.send_signal(signal.SIGKILL)
        s1.wait(10)
        dead = time.monotonic()
        print("killed the first server (SIGKILL) while reading")
        time.sleep(1.0)
        stop.set()
        th.join(30)
        stall = max((e - max(s, dead) for s, e in spans if e > dead), default=float("inf"))
        print(f"failover: every read succeeded; longest stall {stall * 1000:.0f} ms")
        assert h.pread(len(payload), 1 << 20) == payload
        print("data read back from the second server: OK")
        return 0
    finally:
        # nbdkit waits for connected clients before it exits on SIGTERM.
        try:
            h.shutdown()
        except Exception:
            pass
        k.terminate()
        k.wait(15)
        log.close()
        for p in (s1, s2):
            if p.poll() is None:
                p.terminate()
                p.wait(15)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m multihttp.demo")
    ap.add_argument("--disk", type=Path, help="disk image to serve (default: a 64 MiB sample)")
    ap.add_argument("--workdir", type=Path)
    a = ap.parse_args(argv)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="multihttp-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        disk = a.disk
        if disk is None:
            disk = work / "sample.img"
            disk.write_bytes(os.urandom(64 << 20))
        return run(disk, work)
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
