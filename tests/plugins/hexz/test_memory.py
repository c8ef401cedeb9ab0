"""Memory stays bounded by cache= plus fixed pools (read buffers, Zstd contexts, readahead
window), however much is read and by however many connections."""

from __future__ import annotations

import os

import hexz
import pytest

from tests.support import load
from tests.support.archives import inputs as gen
from tests.support.nbd import Server

MiB = 1 << 20


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> tuple[str, bytes]:
    d = tmp_path_factory.mktemp("memory")
    # 96 MiB: far more than the cache, text so that blocks are large and compress.
    data = b"".join(gen.text(4 * MiB, seed) for seed in range(24))
    (d / "big.img").write_bytes(data)
    cwd = os.getcwd()
    os.chdir(d)
    try:
        hexz.pack("big.img", "big.hxz", compression="zstd")
    finally:
        os.chdir(cwd)
    return str(d / "big.hxz"), data


@pytest.mark.parametrize("params", [("cache=8M",), ("cache=8M", "threads=parallel")])
def test_rss_bounded_by_cache_while_reading_everything(big_archive, tmp_path, params):
    path, data = big_archive
    srv = Server(tmp_path / "srv", path, *params)
    try:
        with srv.client() as c:                  # imports, first page, pools warmed up
            assert c.pread(MiB, 0) == data[:MiB]
        base = _rss(srv.pid)
        errors = load.random_reads(srv.client, data, reads=60, sizes=(4096, 256 << 10, MiB))
        assert not errors, errors[:5]
        # Read several times the cache's size in all: growth must stay within the cache
        # plus the fixed pools (4 read buffers of <= 4 MiB, <= 8 Zstd contexts, nbdkit's
        # request buffers), far below the 96 MiB that an unbounded cache would keep.
        grown = _rss(srv.pid) - base
        assert grown < 8 * MiB + 40 * MiB, f"nbdkit grew by {grown / MiB:.0f} MiB"
    finally:
        srv.stop()
