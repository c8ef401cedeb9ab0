"""An independent, minimal decoder of the .hxz layout, written from hxz-format.md only.

The tests use it to learn where block and page edges are (so reads can be aimed at them)
and at which file offsets header fields, page entries and records sit (so corrupt copies
can be made by patching exact bytes). It deliberately shares no code with the `hxz`
package under test: a bug there must not hide itself here.

It never decompresses anything: expected *content* always comes from the packed inputs.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

HEADER_REGION = 4096
PAGE_ENTRY_SIZE = 28
RECORD_SIZE = 52
PARENT_REF = 0xFFFF_FFFF_FFFF_FFFF


class _Cursor:
    """Sequential little-endian bincode reader over a bytes object."""

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise ValueError(f"bincode: need {n} bytes at {self.pos}, have {len(self.buf)}")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        return self.take(self.u64()).decode("utf-8")

    def option(self, read):  # noqa: ANN001 - tiny local helper
        tag = self.u8()
        if tag not in (0, 1):
            raise ValueError(f"bad option tag {tag} at {self.pos - 1}")
        return read() if tag else None


@dataclass
class Header:
    magic: bytes
    version: int
    block_size: int
    index_offset: int
    parent_paths: list[str]
    dictionary: tuple[int | None, int | None]
    metadata: tuple[int | None, int | None]
    signature: tuple[int | None, int | None]
    encryption: tuple[bytes, int] | None
    compression: int
    features: tuple[int, int, int]
    cdc: tuple[int, int, int] | None
    encoded_len: int = 0
    # file offset of selected fields, for patching
    pos: dict[str, int] = field(default_factory=dict)


def parse_header(buf: bytes) -> Header:
    c = _Cursor(buf[:HEADER_REGION])
    pos: dict[str, int] = {}
    pos["magic"] = c.pos
    magic = c.take(4)
    pos["version"] = c.pos
    version = c.u32()
    pos["block_size"] = c.pos
    block_size = c.u32()
    pos["index_offset"] = c.pos
    index_offset = c.u64()
    pos["parent_paths"] = c.pos
    parents = [c.string() for _ in range(c.u64())]
    pos["dictionary"] = c.pos
    dictionary = (c.option(c.u64), c.option(c.u32))
    pos["metadata"] = c.pos
    metadata = (c.option(c.u64), c.option(c.u32))
    pos["signature"] = c.pos
    signature = (c.option(c.u64), c.option(c.u32))
    pos["encryption"] = c.pos
    encryption = c.option(lambda: (c.take(16), c.u32()))
    pos["compression"] = c.pos
    compression = c.u32()
    pos["features"] = c.pos
    features = (c.u8(), c.u8(), c.u8())
    pos["cdc"] = c.pos
    cdc = c.option(lambda: (c.u32(), c.u32(), c.u32()))
    return Header(
        magic, version, block_size, index_offset, parents, dictionary, metadata,
        signature, encryption, compression, features, cdc, c.pos, pos,
    )


def _opt(value: int | None, fmt: str) -> bytes:
    return b"\x00" if value is None else b"\x01" + struct.pack(fmt, value)


def encode_header(h: Header) -> bytes:
    """Re-encode a header (e.g. after changing a field) into a full 4096-byte region."""
    out = bytearray(h.magic)
    out += struct.pack("<IIQ", h.version, h.block_size, h.index_offset)
    out += struct.pack("<Q", len(h.parent_paths))
    for p in h.parent_paths:
        raw = p.encode("utf-8")
        out += struct.pack("<Q", len(raw)) + raw
    for off, length in (h.dictionary, h.metadata, h.signature):
        out += _opt(off, "<Q") + _opt(length, "<I")
    if h.encryption is None:
        out += b"\x00"
    else:
        salt, iterations = h.encryption
        out += b"\x01" + salt + struct.pack("<I", iterations)
    out += struct.pack("<I", h.compression) + bytes(h.features)
    out += b"\x00" if h.cdc is None else b"\x01" + struct.pack("<III", *h.cdc)
    if len(out) > HEADER_REGION:
        raise ValueError("header does not fit in 4096 bytes")
    return bytes(out) + bytes(HEADER_REGION - len(out))


@dataclass
class PageEntry:
    offset: int
    length: int
    start_block: int
    start_logical: int
    entry_pos: int  # file offset of this PageEntry inside the master index


@dataclass
class Record:
    offset: int
    length: int
    logical_len: int
    checksum: int
    hash: bytes
    start: int  # logical start within its stream
    pos: int  # file offset of the 52-byte record
    page: int  # index of its page in the stream's page list

    @property
    def is_parent_ref(self) -> bool:
        return self.offset == PARENT_REF

    @property
    def is_stored(self) -> bool:
        return not self.is_parent_ref and self.length > 0


@dataclass
class Layout:
    path: Path
    header: Header
    pages: tuple[list[PageEntry], list[PageEntry]]
    sizes: tuple[int, int]
    master_len: int

    def records(self, stream: int = 0) -> list[Record]:
        """Every record of a stream (0 = primary, 1 = secondary) with its logical start."""
        data = self.path.read_bytes()
        out: list[Record] = []
        for pno, pe in enumerate(self.pages[stream]):
            c = _Cursor(data, pe.offset)
            n = c.u64()
            start = pe.start_logical
            for _ in range(n):
                rpos = c.pos
                off, length, llen, crc = struct.unpack("<QIII", c.take(20))
                digest = c.take(32)
                out.append(Record(off, length, llen, crc, digest, start, rpos, pno))
                start += llen
        return out

    def manifest(self) -> list[dict] | None:
        off, length = self.header.metadata
        if off is None:
            return None
        with open(self.path, "rb") as f:
            f.seek(off)
            return json.loads(f.read(length).decode("utf-8"))["files"]


def parse(path: str | Path) -> Layout:
    path = Path(path)
    data = path.read_bytes()
    h = parse_header(data)
    c = _Cursor(data, h.index_offset)
    lists: list[list[PageEntry]] = []
    for _ in range(2):
        entries = []
        for _ in range(c.u64()):
            epos = c.pos
            off, length, sb, sl = struct.unpack("<QIQQ", c.take(PAGE_ENTRY_SIZE))
            entries.append(PageEntry(off, length, sb, sl, epos))
        lists.append(entries)
    sizes = (c.u64(), c.u64())
    return Layout(path, h, (lists[0], lists[1]), sizes, c.pos - h.index_offset)


def edges(layout: Layout, stream: int = 0) -> tuple[list[int], list[int]]:
    """(block starts, page starts) of a stream, excluding 0, deduplicated and sorted."""
    blocks = sorted({r.start for r in layout.records(stream) if r.start > 0})
    pages = sorted({p.start_logical for p in layout.pages[stream] if p.start_logical > 0})
    return blocks, pages
