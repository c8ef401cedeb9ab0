"""verify=hash: the BLAKE3 of every decompressed block against its record.

It catches what a CRC of the stored bytes cannot: a record whose offset, length and checksum
point at another valid payload, including one that other records share (a damaged
deduplication).  A record turned into a zero record is caught in both modes (its hash is not
that of zeros).  Archives are packed by hexz at run time, then their index is edited.
"""

from __future__ import annotations

import errno

import nbd
import pytest

import hxz
from tests.support.archives import corrupt
from tests.support.nbd import Server, assert_one_clear_line, try_start


def _read(path, start: int, length: int, verify: str) -> bytes:
    with hxz.open_archive(str(path), verify=verify) as a:
        return a.stream("disk").read(start, length)


@pytest.mark.parametrize("shared", [False, True], ids=["other_payload", "damaged_dedup"])
def test_record_pointing_at_another_payload(cat, tmp_path, shared):
    fx = cat["multipage"]
    bad = tmp_path / "swapped.hxz"
    victim, other = corrupt.point_at_other_payload(fx.path, bad, shared=shared)
    right = fx.primary[victim.start:victim.start + victim.logical_len]
    wrong = fx.primary[other.start:other.start + other.logical_len]
    assert right != wrong
    # verify=crc cannot see it: every CRC matches, the other block's bytes come back.
    assert _read(bad, victim.start, victim.logical_len, "crc") == wrong
    with hxz.open_archive(str(bad), verify="hash") as a:
        s = a.stream("disk")
        # The payload is decoded and cached for its rightful record first: the damaged
        # record must still be checked against its own hash, not ride on the cache.
        assert s.read(other.start, other.logical_len) == wrong
        with pytest.raises(hxz.BlockError) as ei:
            s.read(victim.start, 1)
        msg = str(ei.value)
        assert "BLAKE3" in msg and "swapped.hxz" in msg and str(victim.start) in msg, msg
        assert "\n" not in msg
        # everything else reads; the whole stream in one call fails
        assert s.read(0, victim.start) == fx.primary[:victim.start]
        end = victim.start + victim.logical_len
        assert s.read(end, s.size - end) == fx.primary[end:]
        with pytest.raises(hxz.BlockError):
            s.read(0, s.size)


def test_plugin_verify_hash_gives_eio(cat, tmp_path):
    fx = cat["multipage"]
    bad = tmp_path / "swapped.hxz"
    victim, _ = corrupt.point_at_other_payload(fx.path, bad)
    for verify in ("crc", "hash"):
        srv = Server(tmp_path / f"srv-{verify}", bad, f"verify={verify}")
        try:
            with srv.client() as c:
                if verify == "crc":
                    assert c.pread(victim.logical_len, victim.start) != \
                        fx.primary[victim.start:victim.start + victim.logical_len]
                    continue
                lo = max(0, victim.start - 4096)
                for ln, off in ((1, victim.start), (min(1 << 20, c.size - lo), lo)):
                    with pytest.raises(nbd.Error) as ei:
                        c.pread(ln, off)
                    assert ei.value.errnum == errno.EIO
                if victim.start:
                    assert c.pread(victim.start, 0) == fx.primary[:victim.start]
            assert "BLAKE3" in srv.log_text() and bad.name in srv.log_text()
        finally:
            assert srv.stop() == 0


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_wrong_zero_record(cat, tmp_path, verify):
    """A stored record rewritten as a perfect zero record (offset, length and checksum 0):
    its hash is not that of zeros, so it is damage in both modes."""
    fx = cat["text"]
    recs = fx.layout().records(0)
    idx = next(i for i, r in enumerate(recs) if r.is_stored and r.logical_len)
    bad = tmp_path / "zero.hxz"
    rec = corrupt.set_record_fields(fx.path, bad, idx, offset=0, length=0, checksum=0)
    with pytest.raises(hxz.HxzError) as ei:    # its page is the last: refused at open
        _read(bad, rec.start, rec.logical_len, verify)
    assert "zero record" in str(ei.value), str(ei.value)


@pytest.mark.parametrize("name", ["random", "random_zstd", "mixed", "multipage", "dir",
                                  "thin_of_thin", "thin_of_multipage", "thin_dir"])
def test_verify_hash_reads_good_archives(cat, name):
    fx = cat[name]
    with hxz.open_archive(str(fx.path), verify="hash") as a:
        assert a.info()["verify"] == "hash"
        s = a.stream("disk")
        assert s.read(0, s.size) == fx.primary
        assert s.read(0, s.size) == fx.primary      # cached blocks, checked again
        m = a.stream("memory")
        assert m.read(0, m.size) == fx.secondary


def test_verify_parameter_checked(cat, tmp_path):
    assert_one_clear_line(try_start(tmp_path, cat["text"].path, "verify=sha1"), "verify")
    r = try_start(tmp_path, cat["text"].path, "verify=hash")
    assert r.returncode == 0, r.stderr
    with pytest.raises(ValueError, match="crc or hash"):
        hxz.open_archive(str(cat["text"].path), verify="md5")
