"""Make damaged copies of good archives by patching bytes at offsets computed from the spec.

Each maker copies `src` to `dst`, applies one kind of damage and returns what a test needs to
know about it (which logical range is affected, for instance).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from tests.support.archives import spec


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def flip_payload(src: Path, dst: Path, record_index: int) -> tuple[int, int, list[tuple[int, int]]]:
    """Flip one byte in the middle of the payload of a stored primary record.

    Returns (payload offset, payload length, logical ranges of every record sharing that
    payload): reads touching those ranges must fail with EIO; everything else must still read.
    """
    copy(src, dst)
    layout = spec.parse(dst)
    recs = layout.records(0)
    rec = [r for r in recs if r.is_stored][record_index]
    at = rec.offset + rec.length // 2
    with open(dst, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x5A]))
    hit = [(r.start, r.logical_len) for r in recs
           if r.is_stored and r.offset == rec.offset and r.logical_len > 0]
    return rec.offset, rec.length, hit


_RECORD_FIELDS = {"offset": (0, "<Q"), "length": (8, "<I"), "logical_len": (12, "<I"),
                  "checksum": (16, "<I"), "hash": (20, "32s")}


def set_record_field(src: Path, dst: Path, record_index: int, field: str, value: int) -> \
        tuple[int, int]:
    """Change one field (offset|length|logical_len|checksum) of a primary record in its page.
    Returns the record's logical (start, length) as originally written."""
    return set_record(src, dst, record_index, **{field: value})


def set_record(src: Path, dst: Path, record_index: int, **fields: int | bytes) -> \
        tuple[int, int]:
    """Change several fields of a primary record at once (offset, length, logical_len,
    checksum, hash), as a damaged or forged index page would carry them.
    Returns the record's logical (start, length) as originally written."""
    copy(src, dst)
    rec = spec.parse(dst).records(0)[record_index]
    for field, value in fields.items():
        rel, fmt = _RECORD_FIELDS[field]
        _patch(dst, rec.pos + rel, struct.pack(fmt, value))
    return rec.start, rec.logical_len


def truncate(src: Path, dst: Path, size: int) -> None:
    copy(src, dst)
    with open(dst, "r+b") as f:
        f.truncate(size)


def patch_header(src: Path, dst: Path, **changes: object) -> None:
    """Re-encode the header with some fields changed (magic, version, compression,
    encryption, index_offset, parent_paths ...)."""
    copy(src, dst)
    h = spec.parse_header(dst.read_bytes()[:spec.HEADER_REGION])
    for k, v in changes.items():
        setattr(h, k, v)
    _patch(dst, 0, spec.encode_header(h))


def set_page_entry(src: Path, dst: Path, page: int, field: str, value: int,
                   stream: int = 0) -> spec.PageEntry:
    """Change a PageEntry field (offset|length|start_block|start_logical) in the master index."""
    copy(src, dst)
    pe = spec.parse(dst).pages[stream][page]
    rel, fmt = {"offset": (0, "<Q"), "length": (8, "<I"), "start_block": (12, "<Q"),
                "start_logical": (20, "<Q")}[field]
    _patch(dst, pe.entry_pos + rel, struct.pack(fmt, value))
    return pe


def set_stream_size(src: Path, dst: Path, stream: int, value: int) -> None:
    """Change a stream's size (0 = primary, 1 = secondary) in the master index."""
    copy(src, dst)
    layout = spec.parse(dst)
    at = layout.header.index_offset + layout.master_len - 16 + 8 * stream
    _patch(dst, at, struct.pack("<Q", value))


def alter_hashes(path: Path, digest: bytes) -> int:
    """In place: change every record of `path` whose hash is `digest` (flip its first byte),
    so a child's parent reference to it can no longer be resolved. Returns how many."""
    layout = spec.parse(path)
    n = 0
    for stream in (0, 1):
        for r in layout.records(stream):
            if r.hash == digest:
                _patch(path, r.pos + 20, bytes([digest[0] ^ 0xFF]))
                n += 1
    return n


def replace_manifest(src: Path, dst: Path, raw: bytes) -> None:
    """Swap a directory archive's JSON manifest (the last region of a 0.8.2 file) for `raw`,
    updating metadata_length in the header."""
    data = bytearray(src.read_bytes())
    h = spec.parse_header(bytes(data[:spec.HEADER_REGION]))
    off = h.metadata[0]
    assert off is not None and off + h.metadata[1] == len(data), "manifest is not last"
    h.metadata = (off, len(raw))
    data[:spec.HEADER_REGION] = spec.encode_header(h)
    dst.write_bytes(bytes(data[:off]) + raw)
