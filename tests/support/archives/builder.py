"""Builds .hxz files byte by byte from the spec (hxz-format.md), for unit tests.

hexz 0.8.2 never writes zero records, several pages per small stream, dictionaries or
multi-parent headers, so these tests craft them.  Records carry the real BLAKE3 of their
content, as hexz writes it: the reader checks it for zero records and with verify="hash".
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

import blake3
import lz4.block
import zstandard

PARENT_REF = 0xFFFFFFFFFFFFFFFF


def h32(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def compress(data: bytes, compression: str, zdict: zstandard.ZstdCompressionDict | None = None
             ) -> bytes:
    if compression == "lz4":
        return lz4.block.compress(data)             # u32 size prefix + raw block
    params = {"write_content_size": False, "write_checksum": False}
    c = zstandard.ZstdCompressor(dict_data=zdict, **params) if zdict else \
        zstandard.ZstdCompressor(**params)
    return c.compress(data)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def string(s: str) -> bytes:
    b = s.encode()
    return u64(len(b)) + b


def opt(value: bytes | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + value


@dataclass
class Rec:
    """One record to write: kind is data | zero | empty | parent."""
    kind: str
    data: bytes = b""
    length: int = 0          # logical length for zero records

    @property
    def logical(self) -> int:
        return self.length if self.kind == "zero" else len(self.data)


def data(b: bytes) -> Rec:
    return Rec("data", b)


def zero(n: int) -> Rec:
    return Rec("zero", length=n)


def empty() -> Rec:
    return Rec("empty")


def parent(b: bytes) -> Rec:
    return Rec("parent", b)


@dataclass
class Built:
    raw: bytearray
    records: dict[str, list[dict]] = field(default_factory=dict)   # per stream, for tests
    index_offset: int = 0
    pages: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def header(index_offset: int, *, parents: tuple[str, ...] = (), compression: int = 0,
           dictionary: tuple[int, int] | None = None, metadata: tuple[int, int] | None = None,
           version: int = 1, magic: bytes = b"HEXZ", encryption: bool = False,
           cdc: tuple[int, int, int] | None = (18, 65536, 1 << 20),
           flags: bytes = b"\x01\x00\x01") -> bytes:
    out = magic + u32(version) + u32(65536) + u64(index_offset)
    out += u64(len(parents)) + b"".join(string(p) for p in parents)
    out += opt(u64(dictionary[0]) if dictionary else None)
    out += opt(u32(dictionary[1]) if dictionary else None)
    out += opt(u64(metadata[0]) if metadata else None)
    out += opt(u32(metadata[1]) if metadata else None)
    out += opt(None) + opt(None)                      # signature
    out += opt(b"\x11" * 16 + u32(600000) if encryption else None)
    out += u32(compression) + flags
    out += opt(b"".join(u32(x) for x in cdc) if cdc else None)
    return out


def build(primary: list[Rec], secondary: list[Rec] = (), *, compression: str = "lz4",
          parents: tuple[str, ...] = (), page_records: int = 4096, dedup: bool = True,
          manifest: list[dict] | None = None, dict_bytes: bytes | None = None) -> Built:
    """Lay out a complete archive; returns its bytes and where each record went."""
    raw = bytearray(4096)
    zdict = zstandard.ZstdCompressionDict(dict_bytes) if dict_bytes else None
    dictionary = None
    if dict_bytes:
        dictionary = (len(raw), len(dict_bytes))
        raw += dict_bytes
    stored: dict[bytes, tuple[int, int, int]] = {}
    built = Built(raw)
    entries: dict[str, list[bytes]] = {}
    block_no = 0
    for name, recs in (("primary", list(primary)), ("secondary", list(secondary))):
        infos: list[bytes] = []
        built.records[name] = []
        logical = 0
        for r in recs:
            h = h32(r.data) if r.kind != "zero" else h32(bytes(r.length))
            if r.kind == "parent":
                info = (PARENT_REF, 0, r.logical, 0)
            elif r.kind == "zero":
                info = (0, 0, r.length, 0)
            else:
                if dedup and h in stored and r.kind == "data":
                    off, ln, crc = stored[h]
                else:
                    payload = compress(r.data, compression, zdict)
                    off, ln, crc = len(raw), len(payload), zlib.crc32(payload)
                    raw += payload
                    stored[h] = (off, ln, crc)
                info = (off, ln, r.logical, crc)
            infos.append(struct.pack("<QIII", *info) + h)
            built.records[name].append({"offset": info[0], "length": info[1],
                                        "logical": logical, "logical_len": info[2]})
            logical += r.logical
        # pages
        pages = []
        built.pages[name] = []
        start_logical = 0
        for p0 in range(0, len(infos), page_records):
            chunk = infos[p0:p0 + page_records]
            page = u64(len(chunk)) + b"".join(chunk)
            off = len(raw)
            raw += page
            pages.append(u64(off) + u32(len(page)) + u64(block_no) + u64(start_logical))
            built.pages[name].append((off, len(page)))
            block_no += len(chunk)
            start_logical += sum(struct.unpack_from("<I", c, 12)[0] for c in chunk)
        entries[name] = pages
        built.records[name + "_size"] = logical
    index_offset = len(raw)
    psize = built.records["primary_size"]
    ssize = built.records["secondary_size"]
    raw += u64(len(entries["primary"])) + b"".join(entries["primary"])
    raw += u64(len(entries["secondary"])) + b"".join(entries["secondary"])
    raw += u64(psize) + u64(ssize)
    metadata = None
    if manifest is not None:
        m = json.dumps({"files": manifest}, separators=(",", ":")).encode()
        metadata = (len(raw), len(m))
        raw += m
    hdr = header(index_offset, parents=parents, compression=0 if compression == "lz4" else 1,
                 dictionary=dictionary, metadata=metadata,
                 flags=bytes([bool(primary), bool(secondary), 1]))
    assert len(hdr) <= 4096
    raw[:len(hdr)] = hdr
    built.index_offset = index_offset
    return built


def write(path, built: Built) -> str:
    with open(path, "wb") as f:
        f.write(built.raw)
    return str(path)
