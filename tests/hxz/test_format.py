"""Header, bincode and master-index decoding and their validation errors."""

from __future__ import annotations

import struct

import pytest

import hxz
from hxz.bincode import Cursor, DecodeError
from hxz.header import parse_header
from tests.support.archives import builder as B


def test_cursor_decodes_fixed_width_little_endian_and_strings():
    raw = B.u32(7) + B.u64(1 << 40) + B.string("héllo") + b"\x01" + b"\x00"
    c = Cursor(raw, base=100)
    assert c.u32() == 7
    assert c.u64() == 1 << 40
    assert c.string() == "héllo"
    assert c.option_tag("x") is True
    assert c.boolean() is False
    assert c.offset == 100 + len(raw)


@pytest.mark.parametrize("raw,call", [
    (b"\x02", "option_tag"), (b"\x05", "boolean"), (b"\x01\x02", "u32"),
    (B.u64(1000) + b"abc", "string"), (B.u64(2) + b"\xff\xfe", "string"),
])
def test_cursor_rejects_bad_values_with_offset(raw, call):
    c = Cursor(raw, base=4096)
    with pytest.raises(DecodeError) as e:
        getattr(c, call)("field")
    assert e.value.offset >= 4096
    assert "offset" in str(e.value)


def test_vec_len_bounded_by_remaining_bytes():
    c = Cursor(B.u64(10) + bytes(27))
    with pytest.raises(DecodeError):
        c.vec_len(28, "pages")


def test_header_fields_decode_in_order():
    region = B.header(123456, parents=("base.hxz", "/abs/other.hxz"), compression=1,
                      metadata=(200000, 77)).ljust(4096, b"\0")
    h = parse_header(region, "x.hxz")
    assert h.index_offset == 123456
    assert h.parent_paths == ("base.hxz", "/abs/other.hxz")
    assert h.compression == "zstd"
    assert h.metadata == (200000, 77)
    assert h.dictionary is None and h.signature is None
    assert h.cdc_params == (18, 65536, 1 << 20)
    # The encoded length matches the spec's arithmetic: 55 bytes + 2 strings + metadata.
    assert h.encoded_length == 55 + (8 + 8) + (8 + 14) + 8 + 4


def _write(tmp_path, raw: bytes, name: str = "a.hxz") -> str:
    p = tmp_path / name
    p.write_bytes(raw)
    return str(p)


def _good(tmp_path) -> bytearray:
    return B.build([B.data(b"abc" * 1000)]).raw


@pytest.mark.parametrize("mutate,exc,needle", [
    (lambda r: r.__setitem__(slice(0, 4), b"HEXX"), hxz.FormatError, "bad magic"),
    (lambda r: r.__setitem__(slice(4, 8), B.u32(2)), hxz.UnsupportedError, "version 2"),
    (lambda r: r.__setitem__(slice(4, 8), B.u32(0)), hxz.UnsupportedError, "version 0"),
    (lambda r: r.__setitem__(0x23, 7), hxz.UnsupportedError, "compression value 7"),
    (lambda r: r.__setitem__(0x1C, 9), hxz.FormatError, "Option tag"),
    (lambda r: r.__setitem__(0x27, 2), hxz.FormatError, "bool"),
    (lambda r: r.__setitem__(slice(0x0C, 0x14), B.u64(10 ** 12)), hxz.FormatError,
     "index_offset"),
    (lambda r: r.__setitem__(slice(0x0C, 0x14), B.u64(100)), hxz.FormatError, "index_offset"),
])
def test_header_validation(tmp_path, mutate, exc, needle):
    raw = _good(tmp_path)
    mutate(raw)
    with pytest.raises(exc) as e:
        hxz.open_archive(_write(tmp_path, bytes(raw)))
    msg = str(e.value)
    assert needle in msg and "a.hxz" in msg and "\n" not in msg


def test_encrypted_archive_is_refused(tmp_path):
    raw = _good(tmp_path)
    hdr = B.header(B.build([B.data(b"abc" * 1000)]).index_offset, encryption=True)
    raw[:4096] = hdr.ljust(4096, b"\0")
    with pytest.raises(hxz.UnsupportedError, match="encrypted"):
        hxz.open_archive(_write(tmp_path, bytes(raw)))


def test_header_overflowing_4096_bytes_is_fatal(tmp_path):
    built = B.build([B.data(b"x" * 100)])
    hdr = B.header(built.index_offset, parents=("p" * 4050,))
    assert len(hdr) > 4096
    raw = bytearray(built.raw)
    raw[:4096] = hdr[:4096]
    with pytest.raises(hxz.FormatError, match="header"):
        hxz.open_archive(_write(tmp_path, bytes(raw)))


@pytest.mark.parametrize("size", [0, 3, 100, 4095])
def test_short_files_are_refused(tmp_path, size):
    raw = bytes(_good(tmp_path)[:size])
    with pytest.raises(hxz.FormatError) as e:
        hxz.open_archive(_write(tmp_path, raw))
    assert "a.hxz" in str(e.value)


def test_truncated_file_is_refused_at_open(tmp_path):
    raw = bytes(_good(tmp_path))
    with pytest.raises(hxz.FormatError, match="truncated"):
        hxz.open_archive(_write(tmp_path, raw[:-10]))


def _page_entry_at(built: B.Built, k: int = 0) -> int:
    return built.index_offset + 8 + 28 * k


def test_bad_page_length_is_refused_at_open(tmp_path):
    built = B.build([B.data(b"abc" * 1000), B.data(b"def" * 1000)])
    at = _page_entry_at(built) + 8
    struct.pack_into("<I", built.raw, at, 8 + 52 * 2 + 1)
    with pytest.raises(hxz.FormatError, match="page length"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_old_twenty_byte_record_layout_is_unsupported(tmp_path):
    built = B.build([B.data(b"abc" * 1000)])
    struct.pack_into("<I", built.raw, _page_entry_at(built) + 8, 8 + 20 * 3)
    with pytest.raises(hxz.UnsupportedError, match="20-byte"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_page_outside_data_region_is_refused(tmp_path):
    built = B.build([B.data(b"abc" * 1000)])
    struct.pack_into("<Q", built.raw, _page_entry_at(built), built.index_offset)
    with pytest.raises(hxz.FormatError, match="outside the data region"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_first_page_must_start_at_zero(tmp_path):
    built = B.build([B.data(b"abc" * 1000)])
    struct.pack_into("<Q", built.raw, _page_entry_at(built) + 20, 5)
    with pytest.raises(hxz.FormatError, match="not 0"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_start_block_must_be_contiguous(tmp_path):
    built = B.build([B.data(bytes([i]) * 100) for i in range(6)], page_records=3)
    struct.pack_into("<Q", built.raw, _page_entry_at(built, 1) + 12, 4)
    with pytest.raises(hxz.FormatError, match="start_block"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_stream_size_without_pages_is_refused(tmp_path):
    built = B.build([])
    struct.pack_into("<Q", built.raw, built.index_offset + 16, 5)   # primary_size
    with pytest.raises(hxz.FormatError, match="no index pages"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_size_the_records_do_not_cover_is_refused_at_open(tmp_path):
    built = B.build([B.data(b"a" * 100), B.data(b"b" * 100)])
    # Claim a larger stream than the records cover: the last page is checked at open.
    struct.pack_into("<Q", built.raw, built.index_offset + 8 + 28 + 8, 300)
    with pytest.raises(hxz.FormatError, match="stream size is 300"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def _two_pages(tmp_path, patch) -> hxz.Archive:
    """An archive of two one-record pages, with page 0 patched by ``patch(raw, page_off)``:
    only the last page is checked at open, so page 0's damage shows on the read."""
    built = B.build([B.data(b"a" * 100), B.data(b"b" * 100)], page_records=1)
    patch(built.raw, built.pages["primary"][0][0])
    return hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_payload_outside_data_region_is_a_block_error(tmp_path):
    def patch(raw, page_off):
        struct.pack_into("<Q", raw, page_off + 8, len(raw))
    with _two_pages(tmp_path, patch) as a:
        with pytest.raises(hxz.BlockError, match="outside the data region"):
            a.stream().read(0, 1)
        assert a.stream().read(100, 100) == b"b" * 100


def test_page_count_field_must_match_length(tmp_path):
    with _two_pages(tmp_path, lambda raw, off: struct.pack_into("<Q", raw, off, 2)) as a:
        with pytest.raises(hxz.BlockError, match="holds 2 records"):
            a.stream().read(0, 1)


def test_damaged_last_page_is_refused_at_open(tmp_path):
    built = B.build([B.data(b"a" * 100)])
    struct.pack_into("<Q", built.raw, built.pages["primary"][0][0], 2)
    with pytest.raises(hxz.FormatError, match="holds 2 records"):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_manifest_outside_file_is_refused(tmp_path):
    built = B.build([B.data(b"a" * 10)], manifest=[{"path": "f", "offset": 0, "size": 10,
                                                      "mode": 33188, "mtime": 1}])
    raw = bytes(built.raw[:-3])
    with pytest.raises(hxz.FormatError, match="manifest"):
        hxz.open_archive(_write(tmp_path, raw))


@pytest.mark.parametrize("entry,needle", [
    ({"path": "f", "offset": 0, "size": 11, "mode": 1, "mtime": 1}, "exceeds"),
    ({"path": "", "offset": 0, "size": 1, "mode": 1, "mtime": 1}, "no path"),
    ({"path": "f", "offset": -1, "size": 1, "mode": 1, "mtime": 1}, "bad offset"),
    ({"path": "f", "offset": "0", "size": 1, "mode": 1, "mtime": 1}, "bad offset"),
])
def test_manifest_entries_validated(tmp_path, entry, needle):
    built = B.build([B.data(b"a" * 10)], manifest=[entry])
    with pytest.raises(hxz.FormatError, match=needle):
        hxz.open_archive(_write(tmp_path, bytes(built.raw)))


def test_fifo_and_directory_are_refused_without_blocking(tmp_path):
    import os
    fifo = tmp_path / "pipe.hxz"
    os.mkfifo(fifo)
    with pytest.raises(hxz.FormatError, match="not a regular file"):
        hxz.open_archive(fifo)
    with pytest.raises(hxz.FormatError):
        hxz.open_archive(tmp_path)
