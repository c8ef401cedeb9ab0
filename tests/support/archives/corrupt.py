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


def set_record_field(src: Path, dst: Path, record_index: int, field: str, value: int) -> \
        tuple[int, int]:
    """Change one field (offset|length|logical_len|checksum) of a primary record in its page.
    Returns the record's logical (start, length) as originally written."""
    copy(src, dst)
    rec = spec.parse(dst).records(0)[record_index]
    rel, fmt = _RECORD_FIELDS[field]
    _patch(dst, rec.pos + rel, struct.pack(fmt, value))
    return rec.start, rec.logical_len


def set_record_fields(src: Path, dst: Path, record_index: int, stream: int = 0,
                      **values: int) -> spec.Record:
    """Change several fields of one record at once (offset=, length=, logical_len=,
    checksum=), as someone editing the index by hand would. Returns the original record."""
    copy(src, dst)
    rec = spec.parse(dst).records(stream)[record_index]
    for field, value in values.items():
        rel, fmt = _RECORD_FIELDS[field]
        _patch(dst, rec.pos + rel, struct.pack(fmt, value))
    return rec


_RECORD_FIELDS = {"offset": (0, "<Q"), "length": (8, "<I"), "logical_len": (12, "<I"),
                  "checksum": (16, "<I"), "hash": (20, "32s")}


def set_stream_size(src: Path, dst: Path, stream: int, size: int) -> int:
    """Change a stream's logical size in the master index; returns the original size."""
    copy(src, dst)
    layout = spec.parse(dst)
    at = layout.header.index_offset + layout.master_len - 16 + 8 * stream
    _patch(dst, at, struct.pack("<Q", size))
    return layout.sizes[stream]


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


def point_at_other_payload(src: Path, dst: Path, *, shared: bool = False
                           ) -> tuple[spec.Record, spec.Record]:
    """Make a stored primary record point at another valid payload of the same logical
    length: offset, length and checksum copied from that other record, so every CRC still
    matches and only the record's BLAKE3 hash tells.  With ``shared`` the other payload is
    one that several records already share (a damaged deduplication).  Returns (victim,
    other) as originally written."""
    recs = spec.parse(src).records(0)
    uses: dict[int, int] = {}
    for r in recs:
        uses[r.offset] = uses.get(r.offset, 0) + 1
    by_len: dict[int, list[spec.Record]] = {}
    for r in recs:
        if r.is_stored and r.logical_len:
            by_len.setdefault(r.logical_len, []).append(r)
    for group in by_len.values():
        for other in group:
            if shared != (uses[other.offset] > 1):
                continue
            victim = next((v for v in group if v.offset != other.offset
                           and v.hash != other.hash and uses[v.offset] == 1), None)
            if victim is not None:
                set_record_fields(src, dst, recs.index(victim), offset=other.offset,
                                  length=other.length, checksum=other.checksum)
                return victim, other
    raise AssertionError(f"{src}: no two stored records of one length to swap")
