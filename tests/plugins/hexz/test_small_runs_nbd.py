"""Small-block LZ4 archives through nbdkit: runs of 1-8 KiB blocks are checked and decoded
a run at a time (hxz/copier.py), between deduplicated blocks, zero runs and request edges
that split blocks.  nbdcopy and libnbd must read the input's bytes exactly, and a damaged
block inside a run must fail its requests with EIO, with the block named in the log."""

from __future__ import annotations

import errno
import random
import struct
import zlib

import hexz
import nbd
import pytest

from tests.support.archives import builder as B
from tests.support.archives import inputs as gen
from tests.support.nbd import Server, run_tool

RECORD = 52


def _small_block_image() -> bytes:
    """Unique text (long runs of private blocks), redundant snippets (deduplicated blocks)
    and zero runs, in the shapes hexz chunks at 1-8 KiB."""
    return (gen.text(3_000_000, 61) + bytes(700_000) + gen.redundant(2_000_000, 62)
            + gen.text(1_000_001, 63) + bytes(65_536) + gen.text(333_333, 64))


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    d = tmp_path_factory.mktemp("small-runs")
    data = _small_block_image()
    img = d / "small.img"
    img.write_bytes(data)
    path = d / "small.hxz"
    hexz.pack(str(img), str(path), compression="lz4")
    return path, img, data


def _blocks_of(path) -> tuple[int, int]:
    import hxz
    from hxz.copier import bulk_flags
    with hxz.open_archive(path) as a:
        st = a.pages.index(0)
        runs = dedup = 0
        for pn in range(len(st.pages)):
            page = a.pages.page(0, pn)
            flags = bulk_flags(page)
            runs += flags.count(1) + flags.count(2)
            dedup += sum(1 for k in range(page.n) if page.offs[k] in page.reused)
        return runs, dedup


@pytest.mark.parametrize("params", [(), ("verify=hash",)])
def test_nbdcopy_of_a_small_block_archive_is_byte_exact(small_archive, tmp_path, params):
    path, img, data = small_archive
    runs, dedup = _blocks_of(path)
    assert runs > 2000 and dedup > 100, "test setup: hexz chose other block sizes"
    srv = Server(tmp_path / "srv", path, *params)
    try:
        out = tmp_path / "out.img"
        r = run_tool(["nbdcopy", srv.uri, str(out)], timeout=120)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data
        # nbdcopy's 256 KiB requests never start on a block boundary here either
        rnd = random.Random(7)
        with srv.client() as c:
            for _ in range(150):
                off = rnd.randrange(len(data))
                n = min(rnd.choice([1, 512, 4096, 65536, 262144, 1 << 20]), len(data) - off)
                assert c.pread(n, off) == data[off:off + n], (off, n)
    finally:
        assert srv.stop() == 0


def _damaged_run_archive(tmp_path, kind: str):
    """A hand-built archive of 1-8 KiB blocks with record 25 damaged (see ids)."""
    rnd = random.Random(11)
    blocks = [rnd.randbytes(n) if i % 2 else (b"row %05d " % i) * (n // 10)
              for i, n in enumerate(rnd.randrange(1024, 8192) for _ in range(60))]
    built = B.build([B.data(b) for b in blocks])
    k = 25
    r = built.records["primary"][k]
    page = built.pages["primary"][0][0]
    if kind == "crc":
        built.raw[r["offset"] + r["length"] // 2] ^= 0xFF
    else:
        # the record claims one byte more than its data decodes to, with a matching size
        # prefix and CRC; the next record gives the byte back (the page stays contiguous)
        for j, delta in ((k, 1), (k + 1, -1)):
            rj = built.records["primary"][j]
            n = rj["logical_len"] + delta
            struct.pack_into("<I", built.raw, page + 8 + RECORD * j + 12, n)
            struct.pack_into("<I", built.raw, rj["offset"], n)
            crc = zlib.crc32(bytes(built.raw[rj["offset"]:rj["offset"] + rj["length"]]))
            struct.pack_into("<I", built.raw, page + 8 + RECORD * j + 16, crc)
    path = B.write(tmp_path / f"{kind}.hxz", built)
    start = sum(len(b) for b in blocks[:k])
    return path, b"".join(blocks), start


@pytest.mark.parametrize("kind", ["crc", "short"])
def test_damaged_block_in_a_run_gives_eio_naming_it(tmp_path, kind):
    path, data, start = _damaged_run_archive(tmp_path, kind)
    srv = Server(tmp_path / "srv", path)
    try:
        with srv.client() as c:
            for off, n in ((0, len(data)), (100, len(data) - 200), (start - 5000, 20000)):
                for _ in range(2):
                    with pytest.raises(nbd.Error) as e:
                        c.pread(n, off)
                    assert e.value.errnum == errno.EIO
            # the blocks before the damaged one still read, whole and split
            assert c.pread(start, 0) == data[:start]
            assert c.pread(start - 1001, 1000) == data[1000:start - 1]
        out = tmp_path / "out.img"
        r = run_tool(["nbdcopy", srv.uri, str(out)], timeout=120)
        assert r.returncode != 0, "nbdcopy copied a damaged archive without an error"
        log = srv.log_text()
        assert f"logical offset {start} " in log, log[-2000:]
        assert ("CRC mismatch" if kind == "crc" else "decompressed to") in log
    finally:
        assert srv.stop() == 0
