"""Thin archives: parent references resolved by hash, path search, cycles, errors."""

from __future__ import annotations

import os
import random

import pytest

import hxz
from tests.support.archives import builder as B

R = random.Random(9)
A, Bb, C, D = (R.randbytes(n) for n in (4000, 3000, 5000, 2500))


def make_base(tmp_path, name="base.hxz", compression="lz4"):
    recs = [B.data(A), B.zero(777), B.data(Bb), B.data(C)]
    return B.write(tmp_path / name, B.build(recs, compression=compression)), recs


def test_shifted_parent_refs_resolve_by_hash(tmp_path):
    make_base(tmp_path)
    new = R.randbytes(123)
    child = [B.data(new), B.parent(C), B.parent(A), B.parent(bytes(777)), B.parent(Bb)]
    B.write(tmp_path / "child.hxz", B.build(child, compression="zstd", parents=("base.hxz",)))
    with hxz.open_archive(tmp_path / "child.hxz") as a:
        s = a.stream()
        expect = new + C + A + bytes(777) + Bb
        assert s.read(0, s.size) == expect
        assert s.read(120, 4010) == expect[120:4130]
        ext = s.extents(0, s.size)
        zero_start = 123 + len(C) + len(A)
        assert (zero_start, 777, True) in ext
        assert a.compression == "zstd" and a.parents[0].compression == "lz4"


def test_thin_of_thin_and_prefers_stored_records(tmp_path):
    make_base(tmp_path)
    mid = [B.parent(A), B.data(D), B.parent(C)]
    B.write(tmp_path / "mid.hxz", B.build(mid, parents=("base.hxz",)))
    top = [B.parent(C), B.parent(D), B.parent(A), B.data(b"tail")]
    B.write(tmp_path / "top.hxz", B.build(top, parents=("mid.hxz",)))
    with hxz.open_archive(tmp_path / "top.hxz") as a:
        assert a.stream().read(0, a.stream().size) == C + D + A + b"tail"
        assert a.info()["parent_chain"] == [str(tmp_path / "mid.hxz"),
                                            str(tmp_path / "base.hxz")]


def test_parent_searched_next_to_child_then_cwd_then_parent_dirs(tmp_path, monkeypatch):
    (tmp_path / "store").mkdir()
    (tmp_path / "imgs").mkdir()
    make_base(tmp_path / "store")
    child = B.build([B.parent(A)], parents=("/nonexistent/dir/base.hxz",))
    path = B.write(tmp_path / "imgs" / "c.hxz", child)
    with pytest.raises(hxz.FormatError, match="not found"):
        hxz.open_archive(path)
    with hxz.open_archive(path, parent_dirs=[str(tmp_path / "store")]) as a:
        assert a.stream().read(0, len(A)) == A
    # relative path resolved against the CWD when not next to the child
    rel = B.build([B.parent(A)], parents=("store/base.hxz",))
    path2 = B.write(tmp_path / "imgs" / "rel.hxz", rel)
    monkeypatch.chdir(tmp_path)
    with hxz.open_archive(path2) as a:
        assert a.parents[0].path == os.path.realpath(tmp_path / "store" / "base.hxz")


def test_missing_parent_is_refused_at_open(tmp_path):
    path = B.write(tmp_path / "c.hxz", B.build([B.parent(A)], parents=("gone.hxz",)))
    with pytest.raises(hxz.FormatError) as e:
        hxz.open_archive(path)
    assert "gone.hxz" in str(e.value) and "c.hxz" in str(e.value)


def test_parent_cycle_is_refused(tmp_path):
    B.write(tmp_path / "x.hxz", B.build([B.parent(A)], parents=("y.hxz",)))
    B.write(tmp_path / "y.hxz", B.build([B.parent(A)], parents=("x.hxz",)))
    with pytest.raises(hxz.FormatError, match="cycle"):
        hxz.open_archive(tmp_path / "x.hxz")
    B.write(tmp_path / "self.hxz", B.build([B.data(A)], parents=("self.hxz",)))
    with pytest.raises(hxz.FormatError, match="cycle"):
        hxz.open_archive(tmp_path / "self.hxz")


def test_hash_missing_from_parent_is_block_error_not_zeros(tmp_path):
    make_base(tmp_path)
    child = [B.data(b"ok" * 50), B.parent(b"never stored anywhere")]
    path = B.write(tmp_path / "c.hxz", B.build(child, parents=("base.hxz",)))
    with hxz.open_archive(path) as a:
        assert a.stream().read(0, 100) == b"ok" * 50
        with pytest.raises(hxz.BlockError, match="not found in parent"):
            a.stream().read(100, 5)


def test_parent_ref_length_must_match_parent_record(tmp_path):
    make_base(tmp_path)
    child = B.build([B.parent(A)], parents=("base.hxz",))
    # Make the reference claim one byte less than the parent's block.
    page_off = child.pages["primary"][0][0]
    import struct
    struct.pack_into("<I", child.raw, page_off + 8 + 12, len(A) - 1)
    struct.pack_into("<Q", child.raw, child.index_offset + 8 + 28 + 8, len(A) - 1)
    path = B.write(tmp_path / "c.hxz", child)
    with hxz.open_archive(path) as a:
        with pytest.raises(hxz.BlockError, match="has length"):
            a.stream().read(0, 1)


def test_corrupt_parent_block_surfaces_through_child(tmp_path):
    base_path, _ = make_base(tmp_path)
    built = B.build([B.data(A)])
    off = built.records["primary"][0]["offset"]
    built.raw[off + 10] ^= 0xFF
    B.write(tmp_path / "base.hxz", built)
    path = B.write(tmp_path / "c.hxz", B.build([B.parent(A)], parents=("base.hxz",)))
    with hxz.open_archive(path) as a:
        with pytest.raises(hxz.BlockError, match="CRC mismatch") as e:
            a.stream().read(0, 10)
        assert "base.hxz" in str(e.value)
