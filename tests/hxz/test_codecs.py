"""Payload codecs: LZ4 size-prepended blocks and Zstd frames without content size."""

from __future__ import annotations

import lz4.block
import pytest
import zstandard

from hxz.codecs import make_decoder

DATA = b"some text, some text, " * 500


def test_lz4_round_trip_and_empty():
    dec = make_decoder("lz4")
    assert dec(memoryview(lz4.block.compress(DATA)), len(DATA)) == DATA
    assert dec(memoryview(lz4.block.compress(b"")), 0) == b""


@pytest.mark.parametrize("payload,logical,needle", [
    (lz4.block.compress(DATA), len(DATA) + 1, "size prefix"),
    (b"\x01\x02", 5, "shorter than its size prefix"),
    (lz4.block.compress(DATA)[:40], len(DATA), "LZ4"),
])
def test_lz4_errors(payload, logical, needle):
    with pytest.raises(ValueError, match=needle):
        make_decoder("lz4")(memoryview(payload), logical)


def test_lz4_short_output_detected():
    # A valid block whose prefix and logical_len agree but that decodes to less.
    short = lz4.block.compress(DATA[:-10], store_size=False)
    payload = len(DATA).to_bytes(4, "little") + short
    with pytest.raises(ValueError):
        make_decoder("lz4")(memoryview(payload), len(DATA))


def test_zstd_frame_without_content_size():
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(DATA)
    assert frame[4] == 0x00 or frame[4] & 0x20 == 0   # no content size flag set
    dec = make_decoder("zstd")
    assert dec(memoryview(frame), len(DATA)) == DATA
    empty = zstandard.ZstdCompressor(write_content_size=False).compress(b"")
    assert dec(memoryview(empty), 0) == b""


@pytest.mark.parametrize("logical", [len(DATA) - 1, len(DATA) + 1])
def test_zstd_size_mismatch(logical):
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(DATA)
    with pytest.raises(ValueError, match="Zstd"):
        make_decoder("zstd")(memoryview(frame), logical)


def test_zstd_garbage_and_nonempty_frame_for_empty_record():
    with pytest.raises(ValueError, match="Zstd"):
        make_decoder("zstd")(memoryview(b"\x28\xb5\x2f\xfd garbage"), 10)
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(b"abc")
    with pytest.raises(ValueError):
        make_decoder("zstd")(memoryview(frame), 0)


def test_lz4_with_dictionary_is_rejected():
    with pytest.raises(ValueError):
        make_decoder("lz4", b"dict")
