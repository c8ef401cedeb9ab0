"""Measurement helpers for bench_hexz.py: nbdkit servers, nbdcopy timing, QD1 random reads,
and hexz's own Rust reader."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import nbd

REPO = Path(__file__).resolve().parents[1]
PLUGIN = str(REPO / "plugins" / "hexz.py")


class NbdkitServer:
    """nbdkit on a Unix socket in ``workdir``; stopped with SIGTERM."""

    def __init__(self, workdir: Path, name: str, args: list[str], nbdkit_opts: list[str] = ()):
        self.sock = workdir / f"{name}.sock"
        self.pidfile = workdir / f"{name}.pid"
        for p in (self.sock, self.pidfile):
            if p.exists():
                p.unlink()
        cmd = ["nbdkit", "-f", "--exit-with-parent", *nbdkit_opts, "-U", str(self.sock),
               "-P", str(self.pidfile), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        deadline = time.monotonic() + 60
        while not self.pidfile.exists() or not self.sock.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"nbdkit failed to start: {self.proc.stderr.read().strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nbdkit did not start within 60 s")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """user+system CPU consumed so far by the nbdkit process (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def uri(self, export: str = "") -> str:
        return f"nbd+unix:///{export}?socket={self.sock}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def nbdcopy_seconds(uri: str, timeout: float = 600) -> float:
    t = time.perf_counter()
    subprocess.run(["nbdcopy", uri, "null:"], check=True, timeout=timeout)
    return time.perf_counter() - t


def random_offsets(size: int, count: int, seed: int = 1234) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(0, size // 4096) * 4096 for _ in range(count)]


def random_read_iops(uri: str, offsets: list[int]) -> float:
    """4 KiB reads at queue depth 1 from one libnbd connection (Python loop)."""
    h = nbd.NBD()
    h.connect_uri(uri)
    try:
        pread = h.pread
        t = time.perf_counter()
        for off in offsets:
            pread(4096, off)
        return len(offsets) / (time.perf_counter() - t)
    finally:
        h.shutdown()


def rust_reader_seconds(archive: Path, member: str, chunk: int = 4 << 20) -> float:
    """Read one member of a directory archive with hexz's own (Rust) reader."""
    import hexz
    t = time.perf_counter()
    a = hexz.Archive(str(archive))
    f = a.open(member)
    while f.read(chunk):
        pass
    return time.perf_counter() - t


def hxz_inprocess_seconds(archive: Path, member: str | None, chunk: int = 256 << 10) -> float:
    """Read a stream or member with the pure-Python reader in this process (no nbdkit)."""
    import hxz
    with hxz.open_archive(archive) as a:
        s = a.member(member) if member else a.stream("disk")
        buf = bytearray(chunk)
        mv = memoryview(buf)
        t = time.perf_counter()
        off = 0
        while off < s.size:
            n = min(chunk, s.size - off)
            s.readinto(mv[:n], off)
            off += n
        return time.perf_counter() - t


def drop_file(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
