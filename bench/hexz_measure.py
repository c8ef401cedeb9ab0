"""Measurement helpers for bench_hexz.py: nbdkit servers, nbdcopy timing, QD1 random reads,
and hexz's own Rust reader."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import nbd

from nbdsuite.launch import NbdkitProcess

REPO = Path(__file__).resolve().parents[1]
PLUGIN = str(REPO / "plugins" / "hexz.py")


class NbdkitServer(NbdkitProcess):
    """nbdkit on a Unix socket in ``workdir``; stopped with SIGTERM."""

    def __init__(self, workdir: Path, name: str, args: list[str], nbdkit_opts: list[str] = ()):
        super().__init__(workdir, args, options=nbdkit_opts, name=name, timeout=60)

    def stop(self) -> None:  # type: ignore[override]
        try:
            super().stop(30)
        except TimeoutError:
            pass


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


def random_read_floor_us(archive: Path, offsets: list[int]) -> dict[str, float]:
    """What one random read must cost at least, from the codecs' own speed: for each
    offset, the record holding it is read (pread of its whole payload), CRC-checked and
    decoded whole, as the format requires (a block is the unit of CRC and compression),
    by the same native calls the plugin uses, with no Python bookkeeping and no NBD.
    Returns the mean microseconds per read of each step, and the mean block size."""
    import hxz
    from hxz import native
    from hxz.streamid import StreamId
    steps = {"pread": 0.0, "crc": 0.0, "decode": 0.0, "block KiB": 0.0}
    with hxz.open_archive(archive) as a:
        fd = os.open(archive, os.O_RDONLY)
        try:
            decode_at = a.blocks.decode_at
            src = bytearray(64 << 20)
            dst = bytearray(64 << 20)
            smv, saddr, daddr = memoryview(src), native.address(src), native.address(dst)
            for off in offsets:
                page = next(iter(a.pages.walk(StreamId.DISK, off, off + 1)))[0]
                k = page.find(off)
                ln, n = page.lens[k], page.llens[k]
                t0 = time.perf_counter()
                os.preadv(fd, [smv[:ln]], page.offs[k])
                t1 = time.perf_counter()
                native.crc32_at(0, saddr, ln)
                t2 = time.perf_counter()
                decode_at(saddr, ln, daddr, n)
                t3 = time.perf_counter()
                steps["pread"] += t1 - t0
                steps["crc"] += t2 - t1
                steps["decode"] += t3 - t2
                steps["block KiB"] += n / 1024 / 1e6
        finally:
            os.close(fd)
    return {k: v * 1e6 / len(offsets) for k, v in steps.items()}
