"""Native (ctypes) fast paths: same results as the pure-Python fallbacks, same errors."""

from __future__ import annotations

import os
import random
import struct
import zlib

import lz4.block
import pytest
import zstandard

import hxz
from hxz import blockstore, native
from tests.support.archives import builder as B


def test_native_libraries_are_loaded():
    # The Makefile installs liblz4-1 and libdeflate0; without them the reader still works
    # (python-lz4, zlib) but the fast path this file tests would silently be off.
    assert native.AVAILABLE


def test_native_crc_and_lz4_match_the_python_libraries():
    data = os.urandom(70000) + b"text " * 20000
    buf = bytearray(data)
    assert native.crc32_at(0, native.address(buf), len(buf)) == zlib.crc32(data)
    payload = bytearray(lz4.block.compress(data))
    out = native.uninitialized(len(data))
    got = native.lz4_decompress(native.address(payload) + 4, native.address(out),
                                len(payload) - 4, len(out))
    assert got == len(data) and out == data


@pytest.mark.parametrize("use_native", [True, False])
def test_large_blocks_read_identically_with_and_without_native(tmp_path, monkeypatch,
                                                               use_native):
    monkeypatch.setattr(native, "AVAILABLE", use_native)
    blocks = [os.urandom(90000), b"abc" * 40000, os.urandom(70000)]
    path = B.write(tmp_path / "n.hxz", B.build([B.data(b) for b in blocks]))
    whole = b"".join(blocks)
    with hxz.open_archive(path) as a:
        s = a.stream()
        for off, n in ((0, len(whole)), (5, 100000), (89990, 30), (len(whole) - 7, 7)):
            assert s.read(off, n) == whole[off:off + n]


def _break_lz4(raw: bytearray, off: int, length: int) -> None:
    raw[off + 4] = 0xFF                 # the first LZ4 token, behind a valid size prefix


def _break_zstd(raw: bytearray, off: int, length: int) -> None:
    raw[off + length - 2] ^= 0x55       # inside the last block of the frame


@pytest.mark.parametrize("compression, damage", [("lz4", _break_lz4), ("zstd", _break_zstd)])
def test_native_path_reports_a_malformed_payload_as_block_error(tmp_path, compression,
                                                                 damage):
    blocks = [b"x" * 80000, os.urandom(80000)]
    built = B.build([B.data(b) for b in blocks], compression=compression)
    r = built.records["primary"][0]
    # Damage the payload behind a matching CRC: only the decoder can notice.
    damage(built.raw, r["offset"], r["length"])
    crc = zlib.crc32(bytes(built.raw[r["offset"]:r["offset"] + r["length"]]))
    page_off = built.pages["primary"][0][0]
    struct.pack_into("<I", built.raw, page_off + 8 + 16, crc)
    with hxz.open_archive(B.write(tmp_path / "m.hxz", built)) as a:
        with pytest.raises(hxz.BlockError, match={"lz4": "LZ4", "zstd": "Zstd"}[compression]) \
                as e:
            a.stream().read(10, 10)
        assert "logical offset 0" in str(e.value)
        assert a.stream().read(80000, 10) == blocks[1][:10]


def test_read_buffers_are_recycled_and_bounded():
    a = blockstore.take_scratch(1000)
    blockstore.give_scratch(a)
    assert blockstore.take_scratch(500) is a and len(a[0]) >= 1000
    big = blockstore.take_scratch(blockstore.SCRATCH_KEEP + 1)
    blockstore.give_scratch(big)
    assert all(len(b[0]) <= blockstore.SCRATCH_KEEP for b in blockstore._free_scratch)
    held = [blockstore.take_scratch(10) for _ in range(blockstore.SCRATCH_POOL + 3)]
    for b in held:
        blockstore.give_scratch(b)
    assert len(blockstore._free_scratch) <= blockstore.SCRATCH_POOL


def _zstd_dict() -> bytes:
    samples = [b"record %d: the quick brown fox %s\n" % (i, b"x" * (i % 17)) for i in range(400)]
    return zstandard.train_dictionary(2048, samples).as_bytes()


def test_native_zstd_library_is_loaded():
    # The Makefile installs libzstd1 (a python-zstandard dependency on Debian too).
    assert native.ZSTD_AVAILABLE


@pytest.mark.parametrize("with_dict", [False, True])
def test_native_zstd_matches_python_zstandard(with_dict):
    zd = _zstd_dict() if with_dict else None
    data = b"record 7: the quick brown fox " * 3000 + os.urandom(5000)
    cctx = zstandard.ZstdCompressor(write_content_size=False,
                                    dict_data=zstandard.ZstdCompressionDict(zd) if zd else None)
    frame = bytearray(cctx.compress(data))
    dec = native.ZstdNative(zd)
    out = native.uninitialized(len(data))
    assert dec.decode_at(native.address(frame), len(frame), native.address(out), len(data))
    assert out == data
    # One byte short of room, one byte too many asked for, a damaged frame: all refused.
    small = native.uninitialized(len(data) - 1)
    assert not dec.decode_at(native.address(frame), len(frame), native.address(small),
                             len(small))
    big = native.uninitialized(len(data) + 1)
    assert not dec.decode_at(native.address(frame), len(frame), native.address(big), len(big))
    frame[6] ^= 0xFF
    assert not dec.decode_at(native.address(frame), len(frame), native.address(out), len(data))


def test_native_zstd_without_the_dictionary_fails_cleanly():
    zd = _zstd_dict()
    data = b"record 3: the quick brown fox xxx\n" * 50
    frame = bytearray(zstandard.ZstdCompressor(
        write_content_size=False, dict_data=zstandard.ZstdCompressionDict(zd)).compress(data))
    out = native.uninitialized(len(data))
    assert not native.ZstdNative(None).decode_at(native.address(frame), len(frame),
                                                 native.address(out), len(data))


@pytest.mark.parametrize("use_native", [True, False])
@pytest.mark.parametrize("with_dict", [False, True])
def test_zstd_archives_read_identically_with_and_without_native(tmp_path, monkeypatch,
                                                                use_native, with_dict):
    monkeypatch.setattr(native, "ZSTD_AVAILABLE", use_native)
    monkeypatch.setattr(native, "AVAILABLE", use_native)
    blocks = [os.urandom(90000), b"record 1: the quick brown fox " * 4000, b"", b"z" * 5000,
              os.urandom(70000)]
    built = B.build([B.data(b) for b in blocks], compression="zstd",
                    dict_bytes=_zstd_dict() if with_dict else None)
    path = B.write(tmp_path / "z.hxz", built)
    whole = b"".join(blocks)
    with hxz.open_archive(path) as a:
        assert hasattr(a.blocks._decode, "decode_at") == use_native
        s = a.stream()
        for off, n in ((0, len(whole)), (5, 100000), (89990, 30), (len(whole) - 7, 7)):
            assert s.read(off, n) == whole[off:off + n]


def _small_blocks(seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for i in range(300):
        n = rnd.randrange(1000, 8000)
        out.append(rnd.randbytes(n) if i % 3 == 0 else (b"blk%05d " % i) * (n // 9))
    return out


def _damage_payload(built, index: int, codec_only: bool) -> None:
    """Flip a byte inside record ``index``'s payload; with ``codec_only`` also fix the CRC
    so that only the decoder can notice."""
    r = built.records["primary"][index]
    pos = r["offset"] + r["length"] // 2
    built.raw[pos] ^= 0xA5
    if codec_only:
        crc = zlib.crc32(bytes(built.raw[r["offset"]:r["offset"] + r["length"]]))
        page_off = built.pages["primary"][0][0]
        struct.pack_into("<I", built.raw, page_off + 8 + 52 * index + 16, crc)


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
@pytest.mark.parametrize("use_native", [True, False])
def test_small_block_runs_read_identically_with_and_without_native(
        tmp_path, monkeypatch, use_native, compression):
    # Runs of small private blocks are decoded straight into the read buffer (copier.py):
    # natively, or through python-lz4/zstandard without the libraries.
    monkeypatch.setattr(native, "AVAILABLE", use_native)
    blocks = _small_blocks(5)
    built = B.build([B.data(b) for b in blocks], compression=compression)
    whole = b"".join(blocks)
    with hxz.open_archive(B.write(tmp_path / "s.hxz", built)) as a:
        assert (a.blocks.decode_at is not None) == use_native
        s = a.stream()
        rnd = random.Random(9)
        for _ in range(40):
            off = rnd.randrange(len(whole))
            n = rnd.choice([1, 5000, 70000, 300000])
            assert s.read(off, min(n, len(whole) - off)) == whole[off:off + n]
        assert s.read(0, len(whole)) == whole


@pytest.mark.parametrize("codec_only", [False, True])
@pytest.mark.parametrize("compression", ["lz4", "zstd"])
@pytest.mark.parametrize("use_native", [True, False])
def test_damaged_block_inside_a_small_block_run_names_the_record(
        tmp_path, monkeypatch, use_native, compression, codec_only):
    monkeypatch.setattr(native, "AVAILABLE", use_native)
    blocks = [b"%04d" % i * 500 + os.urandom(300) for i in range(40)]   # 2300 B each
    built = B.build([B.data(b) for b in blocks], compression=compression)
    _damage_payload(built, 20, codec_only)
    start = sum(len(b) for b in blocks[:20])
    # With a matching CRC the damage may still decode cleanly, to other bytes: only the
    # BLAKE3 of verify=hash (or the decoder) can catch it.
    verify = "hash" if codec_only else "crc"
    with hxz.open_archive(B.write(tmp_path / "d.hxz", built), verify=verify) as a:
        s = a.stream()
        with pytest.raises(hxz.BlockError) as e:
            s.read(0, sum(len(b) for b in blocks))          # record 20 is mid-run
        assert f"logical offset {start}" in str(e.value)
        assert ("CRC" in str(e.value)) != codec_only
        # Its neighbours still read, whole or in part.
        assert s.read(0, start) == b"".join(blocks[:20])
        assert s.read(start + len(blocks[20]), 5000) == b"".join(blocks[21:])[:5000]


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_large_blocks_a_read_covers_are_decoded_in_place_not_cached(tmp_path, compression):
    blocks = [os.urandom(70000), b"m" * 100000 + os.urandom(30000), os.urandom(90000),
              b"q" * 80000]
    built = B.build([B.data(b) for b in blocks], compression=compression)
    whole = b"".join(blocks)
    with hxz.open_archive(B.write(tmp_path / "l.hxz", built)) as a:
        offs = [r["offset"] for r in built.records["primary"]]
        assert a.stream().read(5, len(whole) - 10) == whole[5:-5]
        # The edges were partly read and are cached; the two in between were decoded
        # straight into the buffer.
        assert [a.blocks.known(o) for o in offs] == [True, False, False, True]
        # Once a block is cached, a covering read copies it from there (same bytes).
        assert a.stream().read(69000, 3000) == whole[69000:72000]
        assert a.blocks.known(offs[1])
        assert a.stream().read(0, len(whole)) == whole


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_damaged_large_block_decoded_in_place_names_the_record(tmp_path, verify):
    blocks = [os.urandom(70000)] + [b"%06d" % i * 20000 + os.urandom(1000) for i in range(3)]
    built = B.build([B.data(b) for b in blocks])
    _damage_payload(built, 2, codec_only=verify == "hash")
    start = sum(len(b) for b in blocks[:2])
    with hxz.open_archive(B.write(tmp_path / "d.hxz", built), verify=verify) as a:
        with pytest.raises(hxz.BlockError) as e:
            a.stream().read(10, sum(len(b) for b in blocks) - 20)
        assert f"logical offset {start}" in str(e.value)
        assert not a.blocks.known(built.records["primary"][2]["offset"])
