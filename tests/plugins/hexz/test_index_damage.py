"""Damaged index records: never served as zeros, never as another block's bytes.

A stored record whose length is damaged to 0 looks like a zero record.  A zero record has
offset 0, checksum 0 and the BLAKE3 of its zeros, so the damage is visible whatever
else was changed with it: reads of the page it sits on fail with EIO, block status never
calls it a hole, and nbdcopy fails instead of copying zeros.  A record retargeted at another
valid payload (offset, length and checksum all copied) passes the CRC; ``verify=hash``
catches it.
"""

from __future__ import annotations

import errno
import os

import hexz
import nbd
import pytest

from tests.support.archives import corrupt
from tests.support.nbd import Server, run_tool

# Every combination of the fields a zero record must have zeroed (length is what makes it
# look like one), up to the hash: a forger who zeroes everything still leaves a hash that
# is not the BLAKE3 of zeros.
ZEROED = {
    "length": dict(length=0),
    "length+offset": dict(length=0, offset=0),
    "length+checksum": dict(length=0, checksum=0),
    "length+offset+checksum": dict(length=0, offset=0, checksum=0),
    "all+hash": dict(length=0, offset=0, checksum=0, hash=bytes(32)),
}


def _victim(fx, page: int = 1):
    """A stored record in the middle of ``page`` whose content is not all zeros."""
    records = fx.layout().records(0)
    for i, r in enumerate(records):
        if r.page == page and r.is_stored and i % 7 == 3 and \
                fx.primary[r.start:r.start + r.logical_len].count(0) != r.logical_len:
            return i, r
    raise AssertionError("no suitable record")


def _page_range(fx, page: int) -> tuple[int, int]:
    pages = fx.layout().pages[0]
    end = pages[page + 1].start_logical if page + 1 < len(pages) else len(fx.primary)
    return pages[page].start_logical, end - pages[page].start_logical


def _expect_eio(call, *args) -> str:
    with pytest.raises(nbd.Error) as ei:
        call(*args)
    assert ei.value.errnum == errno.EIO, f"{args}: {ei.value}"
    return str(ei.value)


@pytest.mark.parametrize("verify", ["crc", "hash"])
@pytest.mark.parametrize("damage", sorted(ZEROED))
def test_stored_record_damaged_into_zero_record_is_eio(cat, tmp_path, damage, verify):
    fx = cat["multipage"]
    index, rec = _victim(fx)
    bad = tmp_path / "zeroed.hxz"
    corrupt.set_record_fields(fx.path, bad, index, **ZEROED[damage])
    page_start, page_len = _page_range(fx, 1)
    srv = Server(tmp_path / "srv", bad, f"verify={verify}")
    try:
        with srv.client() as c:
            msg = _expect_eio(c.pread, rec.logical_len, rec.start)
            _expect_eio(c.pread, 1, rec.start)                     # nothing was cached
            # Block status must not call the damaged block a hole: its page is data (or,
            # for a reader that says so, an error), and reading it fails.
            try:
                status = c.block_status(rec.logical_len, rec.start)
            except nbd.Error as e:
                assert e.errnum == errno.EIO, e
            else:
                assert status and all(flags & 3 == 0 for _, _, flags in status), status
            # Everything outside the damaged page still reads right.
            assert c.pread(4096, 0) == fx.primary[:4096]
            after = page_start + page_len
            assert c.pread(4096, after) == fx.primary[after:after + 4096]
        assert "damaged record" in srv.log_text(), msg
        out = tmp_path / "copy.raw"
        r = run_tool(["nbdcopy", f"nbd+unix:///?socket={srv.socket}", str(out)])
        assert r.returncode != 0, "nbdcopy copied a damaged archive without an error"
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_parent_reference_with_payload_traces_is_eio(cat, tmp_path, verify):
    """A parent reference has length 0 and checksum 0: a nonzero checksum is damage."""
    fx = cat["thin_of_multipage"]
    records = fx.layout().records(0)
    index = next(i for i, r in enumerate(records) if r.is_parent_ref and r.page == 0)
    bad = tmp_path / "ref.hxz"
    corrupt.set_record_fields(fx.path, bad, index, checksum=0x1234)
    srv = Server(tmp_path / "srv", bad, f"verify={verify}",
                 f"parent-dir={cat['multipage_zstd'].path.parent}")
    try:
        with srv.client() as c:
            _expect_eio(c.pread, 4096, records[index].start)
    finally:
        assert srv.stop() == 0


@pytest.fixture(scope="module")
def retargeted(tmp_path_factory):
    """A record pointing at another valid payload of the same logical length, with that
    payload's offset, length and checksum: a damage the CRC cannot see."""
    root = tmp_path_factory.mktemp("retarget")
    block = os.urandom(100_000)
    data = block * 3 + os.urandom(200_000)      # repeats make small, equal-length blocks
    (root / "disk.img").write_bytes(data)
    good = root / "good.hxz"
    hexz.pack(str(root / "disk.img"), str(good), compression="lz4")
    bad = root / "bad.hxz"
    victim, other = corrupt.point_at_other_payload(good, bad)
    return bad, data, victim, other


def test_verify_hash_refuses_a_retargeted_record(retargeted, tmp_path):
    bad, data, victim, _ = retargeted
    srv = Server(tmp_path / "srv", bad, "verify=hash")
    try:
        with srv.client() as c:
            msg = _expect_eio(c.pread, victim.logical_len, victim.start)
            if victim.start:
                assert c.pread(victim.start, 0) == data[:victim.start]
            end = victim.start + victim.logical_len
            assert c.pread(len(data) - end, end) == data[end:]
        assert "BLAKE3" in srv.log_text(), msg
    finally:
        assert srv.stop() == 0


def test_verify_hash_sees_through_the_block_cache(retargeted, tmp_path):
    """The damaged record names a payload another record already brought into the cache:
    the cached block must not be handed out under the damaged record's name."""
    bad, data, victim, other = retargeted
    srv = Server(tmp_path / "srv", bad, "verify=hash")
    try:
        with srv.client() as c:
            got = c.pread(other.logical_len, other.start)      # now in the block cache
            assert got == data[other.start:other.start + other.logical_len]
            _expect_eio(c.pread, victim.logical_len, victim.start)
    finally:
        assert srv.stop() == 0
