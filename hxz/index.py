"""Master index (docs/hxz-format.md §4) and index pages (§5), decoded into compact arrays.

Pages are decoded once into ``array`` columns so that the read path only does index
arithmetic and a ``bisect`` per request, never per-record object construction.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import add

from .bincode import Cursor, DecodeError
from .digest import MissingBlake3, zeros_hash
from .errors import BlockError, FormatError, UnsupportedError
from .header import HEADER_SIZE
from .streamid import StreamId

PAGE_ENTRY_SIZE = 28
RECORD_SIZE = 52
PARENT_REF = 0xFFFFFFFFFFFFFFFF
# Sanity bound on one page: 0.8.2 writes at most 4096 records; anything vastly larger is
# corruption, and refusing it keeps one page load from allocating gigabytes.
MAX_PAGE_RECORDS = 1 << 20
MAX_STREAM_SIZE = 1 << 63

_RECORD = struct.Struct("<QIII32s")
_PAGE_ENTRY = struct.Struct("<QIQQ")


@dataclass(frozen=True)
class PageEntry:
    offset: int
    length: int
    start_block: int
    start_logical: int

    @property
    def count(self) -> int:
        return (self.length - 8) // RECORD_SIZE


@dataclass(frozen=True)
class StreamIndex:
    sid: StreamId
    size: int
    pages: tuple[PageEntry, ...]
    page_starts: array            # start_logical of every page, for bisect

    @property
    def block_count(self) -> int:
        return sum(p.count for p in self.pages)


def _decode_entries(cur: Cursor, path: str, stream: str) -> list[PageEntry]:
    n = cur.vec_len(PAGE_ENTRY_SIZE, f"{stream} page list")
    out = []
    for _ in range(n):
        raw = cur.raw(PAGE_ENTRY_SIZE, f"{stream} page entry")
        out.append(PageEntry(*_PAGE_ENTRY.unpack(raw)))
    return out


def _check_entries(entries: list[PageEntry], size: int, stream: str, path: str,
                   index_offset: int) -> None:
    prev: PageEntry | None = None
    for k, e in enumerate(entries):
        where = f"{path}: {stream} page {k} (entry offset {e.offset})"
        if e.length < 8 or (e.length - 8) % RECORD_SIZE:
            hint = ""
            if e.length >= 8 and (e.length - 8) % 20 == 0:
                hint = "; looks like an older version-1 layout with 20-byte records, " \
                       "which is not supported"
                raise UnsupportedError(f"{where}: page length {e.length} is not 8 + 52*n{hint}")
            raise FormatError(f"{where}: bad page length {e.length}, not 8 + 52*n")
        if e.count > MAX_PAGE_RECORDS:
            raise FormatError(f"{where}: page claims {e.count} records (limit "
                              f"{MAX_PAGE_RECORDS})")
        if e.offset < HEADER_SIZE or e.offset + e.length > index_offset:
            raise FormatError(f"{where}: page range [{e.offset}, {e.offset + e.length}) lies "
                              f"outside the data region [{HEADER_SIZE}, {index_offset})")
        if prev is None:
            if e.start_logical != 0:
                raise FormatError(f"{where}: first page starts at logical {e.start_logical}, "
                                  f"not 0")
        else:
            if e.start_logical < prev.start_logical:
                raise FormatError(f"{where}: pages out of logical order ({e.start_logical} "
                                  f"after {prev.start_logical})")
            if e.start_block != prev.start_block + prev.count:
                raise FormatError(f"{where}: start_block {e.start_block} does not follow the "
                                  f"previous page ({prev.start_block} + {prev.count})")
        if e.start_logical > size:
            raise FormatError(f"{where}: page starts at logical {e.start_logical}, beyond "
                              f"the stream size {size}")
        prev = e
    if not entries and size:
        raise FormatError(f"{path}: {stream} stream has size {size} but no index pages")


def parse_master_index(read_at, path: str, index_offset: int, file_size: int
                       ) -> tuple[StreamIndex, StreamIndex]:
    """Decode the master index; ``read_at(offset, n)`` reads file bytes."""
    if not HEADER_SIZE <= index_offset < file_size:
        raise FormatError(f"{path}: index_offset {index_offset} outside [{HEADER_SIZE}, "
                          f"{file_size}) (truncated or corrupt file)")
    avail = file_size - index_offset
    try:
        first = read_at(index_offset, min(avail, 8))
        n1 = Cursor(first, index_offset).vec_len(0, "primary page list") if len(first) == 8 \
            else None
        if n1 is None or n1 * PAGE_ENTRY_SIZE + 8 + 8 + 16 > avail:
            raise DecodeError(index_offset, "master index runs past the end of the file")
        # Second page list count follows the first list; read everything up to it plus the
        # fixed tail in two steps so that a huge trailing manifest is never read here.
        part = 8 + n1 * PAGE_ENTRY_SIZE
        head = read_at(index_offset, part + 8)
        n2 = struct.unpack_from("<Q", head, part)[0]
        total = part + 8 + n2 * PAGE_ENTRY_SIZE + 16
        if total > avail:
            raise DecodeError(index_offset + part, "secondary page list runs past the end of "
                                                   "the file")
        data = read_at(index_offset, total)
        cur = Cursor(data, index_offset)
        prim = _decode_entries(cur, path, "disk")
        sec = _decode_entries(cur, path, "memory")
        psize = cur.u64("primary_size")
        ssize = cur.u64("secondary_size")
    except DecodeError as e:
        raise FormatError(f"{path}: bad master index: {e}") from None
    out = []
    for sid, entries, size in ((StreamId.DISK, prim, psize), (StreamId.MEMORY, sec, ssize)):
        if size >= MAX_STREAM_SIZE:
            # NBD export sizes are signed 64-bit (docs/hxz-format.md §4).
            raise FormatError(f"{path}: {sid.label} stream size {size} is not below 2^63")
        _check_entries(entries, size, sid.label, path, index_offset)
        out.append(StreamIndex(sid, size, tuple(entries),
                               array("Q", (e.start_logical for e in entries))))
    return out[0], out[1]


class Page:
    """One decoded index page: parallel arrays over its records.

    ``starts`` has n+1 entries (the last is the page's logical end) so record i covers
    ``[starts[i], starts[i+1])``.
    """

    __slots__ = ("stream", "n", "starts", "offs", "lens", "llens", "crcs", "raw", "nbytes",
                 "reused", "zero_flags", "bulk_flags")

    def __init__(self, stream: StreamId, entry: PageEntry, raw: bytes) -> None:
        self.stream = stream
        n = entry.count
        self.n = n
        cols = list(zip(*_RECORD.iter_unpack(memoryview(raw)[8:]), strict=True)) if n else \
            [(), (), (), (), ()]
        self.offs = array("Q", cols[0])
        self.lens = array("I", cols[1])
        self.llens = array("I", cols[2])
        self.crcs = array("I", cols[3])
        self.starts = array("Q", accumulate(self.llens, initial=entry.start_logical))
        self.raw = raw
        self.nbytes = len(raw) + n * 36 + 200
        # Payload offsets referenced by more than one record of this page (dedup): worth
        # caching even when a bulk read consumes them whole.
        reused: set[int] = set()
        if len(set(self.offs)) != n:
            reused = {off for off, c in Counter(self.offs).items() if c > 1}
            reused.discard(PARENT_REF)
        self.reused = reused
        self.zero_flags: bytes | None = None   # per-record b"\x01" = all zeros (extents)
        self.bulk_flags: bytes | None = None   # per-record bulk-read class (hxz/copier.py)

    @property
    def end(self) -> int:
        return self.starts[self.n]

    def hash(self, i: int) -> bytes:
        at = 8 + RECORD_SIZE * i + 20
        return self.raw[at:at + 32]

    def find(self, pos: int) -> int:
        """Index of the record containing logical ``pos`` (start <= pos < end, len > 0)."""
        # bisect_right lands after records sharing a start (empty records), so the
        # returned record is the last one starting at or before pos: the non-empty one.
        return bisect_right(self.starts, pos, 0, self.n) - 1


def decode_page(raw: bytes, stream: StreamIndex, number: int, path: str,
                index_offset: int) -> Page:
    """Decode and validate page ``number`` of ``stream`` (raw = its stored bytes)."""
    entry = stream.pages[number]
    where = f"{path}: {stream.sid.label} page {number} at offset {entry.offset}"
    if len(raw) != entry.length:
        raise BlockError(f"{where}: short read ({len(raw)} of {entry.length} bytes; truncated "
                         f"file?)")
    count = struct.unpack_from("<Q", raw, 0)[0]
    if count != entry.count:
        raise BlockError(f"{where}: page holds {count} records but its length {entry.length} "
                         f"implies {entry.count}")
    page = Page(stream.sid, entry, raw)
    # Contiguity (docs/hxz-format.md §4): this page ends where the next begins, the last
    # one at the stream size.
    nxt = stream.pages[number + 1].start_logical if number + 1 < len(stream.pages) \
        else stream.size
    if page.end != nxt:
        what = "the next page's start" if number + 1 < len(stream.pages) else "the stream size"
        raise BlockError(f"{where}: records cover logical [{entry.start_logical}, {page.end}) "
                         f"but {what} is {nxt}")
    _check_records(page, where, index_offset)
    return page


def _zeros_hash(n: int, where: str) -> bytes:
    try:
        return zeros_hash(n)
    except MissingBlake3 as e:
        raise MissingBlake3(f"{where}: {e}") from None


def _check_records(page: Page, where: str, index_offset: int) -> None:
    """Record invariants of docs/hxz-format.md §7: a stored payload lies in the data region;
    a parent reference has length 0 and checksum 0; any other length-0 record is a zero record
    with offset 0, checksum 0 and a zero-content hash.  Anything else is damage (a stored
    record whose length was lost, say), and must never be read as zeros."""
    offs, lens, crcs = page.offs, page.lens, page.crcs
    # Vectorised bounds check over stored payloads; the slow loop only runs to name the
    # culprit.
    stored = list(compress(offs, lens))
    if stored and (min(stored) < HEADER_SIZE or max(map(add, offs, lens)) > index_offset):
        for i in range(page.n):
            off = offs[i]
            if lens[i] and (off < HEADER_SIZE or off + lens[i] > index_offset):
                what = "a parent reference with a length" if off == PARENT_REF else \
                    f"payload [{off}, {off + lens[i]}) outside the data region " \
                    f"[{HEADER_SIZE}, {index_offset})"
                raise BlockError(f"{where}: record {i} at logical offset {page.starts[i]}: "
                                 f"{what}")
    if not lens.count(0):
        return
    for i in [k for k, ln in enumerate(lens) if not ln]:
        off, crc = offs[i], crcs[i]
        if off == PARENT_REF:
            if not crc:
                continue
            bad = f"parent reference with checksum {crc:#010x}"
        elif off or crc:
            bad = (f"length 0 with offset {off} and checksum {crc:#010x} (a zero record has "
                   f"offset 0 and checksum 0)")
        elif page.hash(i) != _zeros_hash(page.llens[i], where):
            bad = "zero record whose hash is not that of zeros"
        else:
            continue
        raise BlockError(f"{where}: record {i} at logical offset {page.starts[i]}: damaged "
                         f"record: {bad}")
