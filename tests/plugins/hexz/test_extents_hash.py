"""Block status decides "zero" from the index: a small payload AND the BLAKE3 of zeros.

Under ``verify=crc`` a stored record is reported zero when its payload is small enough to be
zeros and its ``hash`` field is the BLAKE3 of ``logical_len`` zero bytes, without reading the
payload (so a remote archive fetches nothing for a block status query).  Under
``verify=hash`` the payload is also decoded and checked.  Archives come from the catalogue
(packed by hexz at run time); their index is then edited with tests/support's corrupt
helpers.
"""

from __future__ import annotations

import errno

import nbd
import pytest

from hxz.digest import zeros_hash
from tests.support.archives import corrupt, spec
from tests.support.nbd import Server, run_tool


def _zero_in(srv: Server, start: int, length: int) -> list[bool]:
    """The zero flag of every extent overlapping [start, start + length)."""
    with srv.client() as c:
        return [bool(f & nbd.STATE_ZERO) for _, _, f in c.block_status(length, start)]


def _pick(fx, want_zero_content: bool, small: bool) -> tuple[int, spec.Record]:
    """(index, record) of a stored primary record with or without all-zero content and a
    payload small (or not) by the extents' size rule."""
    recs = spec.parse(fx.path).records(0)
    for i, r in enumerate(recs):
        if not r.is_stored or r.logical_len < 4096:
            continue
        chunk = fx.primary[r.start:r.start + r.logical_len]
        is_small = r.length <= (r.logical_len >> 5) + 64
        if (chunk.count(0) == len(chunk)) == want_zero_content and is_small == small:
            return i, r
    raise AssertionError(f"{fx.path}: no such record")


def _serve(tmp_path, name: str, path, verify: str) -> Server:
    return Server(tmp_path / name, path, f"verify={verify}")


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_zero_payload_with_another_hash_is_data(cat, tmp_path, verify):
    """A record whose payload decodes to zeros but whose hash is not that of zeros is never
    reported as zero (whatever its payload holds, the record does not vouch for zeros)."""
    fx = cat["mixed"]
    i, rec = _pick(fx, want_zero_content=True, small=True)
    bad = tmp_path / "bad.hxz"
    other = bytes([rec.hash[0] ^ 0xFF]) + rec.hash[1:]
    corrupt.set_record_fields(fx.path, bad, i, hash=other)
    srv = _serve(tmp_path, "srv", bad, verify)
    good = _serve(tmp_path, "good", fx.path, verify)
    try:
        assert not any(_zero_in(srv, rec.start, rec.logical_len))
        assert all(_zero_in(good, rec.start, rec.logical_len))     # the untouched archive
        with srv.client() as c:
            if verify == "crc":      # a read trusts the payload's CRC: zeros
                assert c.pread(rec.logical_len, rec.start) == bytes(rec.logical_len)
            else:                    # the hash does not match the block: EIO
                with pytest.raises(nbd.Error) as ei:
                    c.pread(1, rec.start)
                assert ei.value.errnum == errno.EIO
    finally:
        assert srv.stop() == 0, srv.log_text()
        assert good.stop() == 0, good.log_text()


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_zero_hash_with_a_big_payload_is_data(cat, tmp_path, verify):
    """A payload too big to be zeros is data whatever its hash says (no decode needed)."""
    fx = cat["mixed"]
    i, rec = _pick(fx, want_zero_content=False, small=False)
    bad = tmp_path / "bad.hxz"
    corrupt.set_record_fields(fx.path, bad, i, hash=zeros_hash(rec.logical_len))
    srv = _serve(tmp_path, "srv", bad, verify)
    try:
        assert not any(_zero_in(srv, rec.start, rec.logical_len))
        if verify == "crc":
            out = tmp_path / "copy.img"
            r = run_tool(["nbdcopy", srv.uri, str(out)], timeout=120)
            assert r.returncode == 0, r.stderr
            assert out.read_bytes() == fx.primary
    finally:
        assert srv.stop() == 0, srv.log_text()


def test_zero_hash_on_real_data_is_decoded_under_verify_hash(cat, tmp_path):
    """A small payload holding real data (a run of 0x01 bytes), its record's hash edited to
    the BLAKE3 of zeros.  verify=hash decodes to confirm: data, and reading it fails with EIO
    (its hash is wrong), so nbdcopy fails instead of writing zeros.  verify=crc trusts the
    record for block status as it trusts records for reads (docs/hxz-format.md §14): zero."""
    fx = cat["mixed"]
    i, rec = _pick(fx, want_zero_content=False, small=True)
    real = fx.primary[rec.start:rec.start + rec.logical_len]
    bad = tmp_path / "bad.hxz"
    corrupt.set_record_fields(fx.path, bad, i, hash=zeros_hash(rec.logical_len))
    strict = _serve(tmp_path, "hash", bad, "hash")
    trusting = _serve(tmp_path, "crc", bad, "crc")
    try:
        assert not any(_zero_in(strict, rec.start, rec.logical_len))
        with strict.client() as c:
            with pytest.raises(nbd.Error) as ei:
                c.pread(rec.logical_len, rec.start)
            assert ei.value.errnum == errno.EIO
            assert c.pread(rec.start, 0) == fx.primary[:rec.start]
        out = tmp_path / "copy.img"
        r = run_tool(["nbdcopy", strict.uri, str(out)], timeout=120)
        assert r.returncode != 0
        assert "BLAKE3" in strict.log_text() and str(rec.start) in strict.log_text()

        assert all(_zero_in(trusting, rec.start, rec.logical_len))
        with trusting.client() as c:
            assert c.pread(rec.logical_len, rec.start) == real
    finally:
        assert strict.stop() == 0, strict.log_text()
        assert trusting.stop() == 0, trusting.log_text()
