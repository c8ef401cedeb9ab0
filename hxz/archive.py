"""Archive, Stream and member views: opening, validation and the public API.

Memory at open is the header, the master index (28 bytes per index page) and the
manifest.  Index pages are loaded on demand through a bounded page cache; decompressed
blocks go through a bounded block cache shared by the whole parent chain and keyed by
(archive token, payload offset) so deduplicated records share one entry.  The read path
lives in blockio.py, parent resolution in parents.py, block status in extents.py.
"""

from __future__ import annotations

import itertools
import os
import stat
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from . import digest
from .blockio import BlockReader
from .cache import LRUCache
from .chain import MAX_DEPTH, find_parent
from .codecs import make_decoder
from .errors import BlockError, FormatError, HxzError, UnsupportedError
from .extents import ZeroExtents
from .header import HEADER_SIZE, parse_header
from .index import Page, StreamIndex, decode_page, parse_master_index
from .manifest import MAX_MANIFEST, Member, parse_manifest
from .parents import ParentResolver
from .readahead import Readahead

__all__ = ["Archive", "Stream", "MemberView", "open_archive"]

_tokens = itertools.count(1)
VERIFY_MODES = ("crc", "hash")
MAX_DICTIONARY = 64 << 20
# Readahead only pays when most work is GIL-free codec/CRC time: large average blocks.
READAHEAD_MIN_AVG_BLOCK = 64 << 10
_STREAM_ALIASES = {"disk": 0, "primary": 0, "memory": 1, "secondary": 1}
_STREAM_LABEL = ("disk", "memory")


def _page_size(page: Page) -> int:
    return page.nbytes


class _Shared:
    """Caches shared by an archive and its parents."""

    def __init__(self, cache_size: int) -> None:
        page_budget = max(cache_size // 4, 4 << 20)
        self.pages = LRUCache(page_budget, _page_size)
        self.blocks = LRUCache(max(cache_size - page_budget, 1 << 20))


class Archive(BlockReader, ParentResolver, ZeroExtents):
    """An opened .hxz file (use :func:`open_archive`)."""

    def __init__(self, path: str, parent_dirs: Sequence[str] = (), cache_size: int = 64 << 20,
                 *, verify: str = "crc", _shared: _Shared | None = None,
                 _chain: tuple[str, ...] = ()) -> None:
        self.path = str(path)
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify={verify!r}: expected crc or hash")
        self.verify = verify
        self._hash = verify == "hash"
        self._verified: dict[int, bytes] = {}
        self._shared = _shared or _Shared(cache_size)
        self._token = next(_tokens)
        self._fd = -1
        self.parents: list[Archive] = []
        self._hashmap: dict[bytes, int] | None = None
        self._hash_lock = threading.Lock()
        self._zero_verdicts: dict[int, bool] = {}
        self._readahead: Readahead | None = None
        self._ra_lock = threading.Lock()
        try:
            # O_NONBLOCK: opening a FIFO by mistake must fail fast, not wait for a writer.
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            raise FormatError(f"{self.path}: cannot open: {e.strerror}") from None
        try:
            self._open(list(parent_dirs), _chain)
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- opening
    def _open(self, parent_dirs: list[str], chain: tuple[str, ...]) -> None:
        if self._hash:
            try:
                digest.require()
            except digest.MissingBlake3 as e:
                raise FormatError(f"{self.path}: verify=hash: {e}") from None
        st = os.fstat(self._fd)
        if stat.S_ISREG(st.st_mode):
            self.file_size = st.st_size
        elif stat.S_ISBLK(st.st_mode):
            self.file_size = os.lseek(self._fd, 0, os.SEEK_END)
        else:
            raise FormatError(f"{self.path}: not a regular file or block device")
        h = parse_header(os.pread(self._fd, HEADER_SIZE, 0), self.path)
        self.header = h
        self.compression = h.compression
        prim, sec = parse_master_index(self._pread, self.path, h.index_offset, self.file_size)
        self._streams: tuple[StreamIndex, StreamIndex] = (prim, sec)
        for sidx, st in enumerate(self._streams):
            # One page per stream at open: its records must end exactly at the stream size
            # (docs/hxz-format.md §4), so a size the index does not cover is refused here.
            if st.pages:
                try:
                    self._page(sidx, len(st.pages) - 1)
                except BlockError as e:
                    raise FormatError(str(e)) from None
        dict_bytes = None
        if h.dictionary is not None:
            off, ln = h.dictionary
            if h.compression != "zstd":
                raise UnsupportedError(f"{self.path}: LZ4 archive with a dictionary at offset "
                                       f"{off} is not a supported layout")
            if off < HEADER_SIZE or off + ln > h.index_offset or ln > MAX_DICTIONARY:
                raise FormatError(f"{self.path}: dictionary [{off}, {off + ln}) lies outside "
                                  f"the data region")
            dict_bytes = self._pread(off, ln)
            if len(dict_bytes) != ln:
                raise FormatError(f"{self.path}: dictionary at offset {off} truncated")
        try:
            self._decode = make_decoder(h.compression, dict_bytes)
        except Exception as e:  # zstandard rejects a malformed dictionary
            raise FormatError(f"{self.path}: unusable zstd dictionary: {e}") from None
        self._members: list[Member] = []
        if h.metadata is not None:
            off, ln = h.metadata
            if off < h.index_offset or off + ln > self.file_size or ln > MAX_MANIFEST:
                raise FormatError(f"{self.path}: manifest [{off}, {off + ln}) lies outside "
                                  f"[{h.index_offset}, {self.file_size}) (truncated file?)")
            self._members = parse_manifest(self._pread(off, ln), self.path, off,
                                           {"disk": prim.size, "memory": sec.size})
        if h.signature is not None:
            off, ln = h.signature
            if off + ln > self.file_size:
                raise FormatError(f"{self.path}: signature [{off}, {off + ln}) lies past the "
                                  f"end of the file ({self.file_size} bytes; truncated?)")
        # Two non-UTF-8 names can become equal after lossy conversion (spec §19): the
        # first such file answers to the name (built in reverse so the first one stays).
        self._member_map = {m.path: m for m in reversed(self._members)}
        me = os.path.realpath(self.path)
        chain = chain + (me,)
        for stored in h.parent_paths:
            found = find_parent(stored, self.path, parent_dirs)
            if found is None:
                raise FormatError(f"{self.path}: parent archive {stored!r} not found (searched "
                                  f"next to the archive, the current directory and "
                                  f"parent-dir)")
            if found in chain:
                raise FormatError(f"{self.path}: parent chain has a cycle through {found}")
            if len(chain) > MAX_DEPTH:
                raise FormatError(f"{self.path}: parent chain deeper than {MAX_DEPTH}")
            self.parents.append(Archive(found, parent_dirs, verify=self.verify,
                                        _shared=self._shared, _chain=chain))

    def _pread(self, offset: int, n: int) -> bytes:
        return os.pread(self._fd, n, offset)

    # ------------------------------------------------------------- public API
    def stream(self, name: str = "disk") -> Stream:
        try:
            idx = _STREAM_ALIASES[name]
        except KeyError:
            raise ValueError(f"unknown stream {name!r} (use disk or memory)") from None
        return Stream(self, idx)

    def has_stream(self, name: str) -> bool:
        """True when the archive holds that stream (a stream with index pages)."""
        return bool(self._streams[self.stream(name)._idx].pages)

    def members(self) -> list[Member]:
        return list(self._members)

    def member(self, path: str) -> MemberView:
        m = self._member_map[path]
        return MemberView(self, _STREAM_ALIASES[m.stream], m)

    def info(self) -> dict:
        h = self.header
        return {
            "path": self.path,
            "compression": self.compression,
            "file_size": self.file_size,
            "disk_size": self._streams[0].size,
            "memory_size": self._streams[1].size,
            "disk_blocks": self._streams[0].block_count,
            "memory_blocks": self._streams[1].block_count,
            "disk_pages": len(self._streams[0].pages),
            "memory_pages": len(self._streams[1].pages),
            "parents": [p.path for p in self.parents],
            "parent_chain": self._chain_paths(),
            "members": len(self._members),
            "cdc_params": list(h.cdc_params) if h.cdc_params else None,
            "dictionary": h.dictionary is not None,
            "signed": h.signature is not None,
            "verify": self.verify,
        }

    def _chain_paths(self) -> list[str]:
        out = []
        for p in self.parents:
            out.append(p.path)
            out.extend(p._chain_paths())
        return out

    def close(self) -> None:
        ra, self._readahead = self._readahead, None
        if ra is not None:
            ra.stop()
        for p in self.parents:
            p.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hxz.Archive {self.path!r} {self.compression}>"

    # ------------------------------------------------------------ page access
    def _page(self, sidx: int, number: int) -> Page:
        st = self._streams[sidx]
        key = (self._token, sidx, number)
        cache = self._shared.pages
        page = cache.get(key)
        if page is None:
            def load() -> Page:
                entry = st.pages[number]
                return decode_page(self._pread(entry.offset, entry.length), st, number,
                                   self.path, self.header.index_offset)
            page = cache.get_or_load(key, load)
        return page

    def _ra(self, window: int, chunk: int, threads: int = 1) -> Readahead:
        ra = self._readahead
        if ra is None:
            with self._ra_lock:
                ra = self._readahead
                if ra is None:
                    ra = self._readahead = Readahead(self._prefetch, window, chunk, threads)
        return ra


class Stream:
    """One logical stream of an archive ("disk"/primary or "memory"/secondary)."""

    def __init__(self, archive: Archive, idx: int, base: int = 0, size: int | None = None,
                 ) -> None:
        self.archive = archive
        self._idx = idx
        self._base = base
        self.size = archive._streams[idx].size if size is None else size
        self.name = _STREAM_LABEL[idx]
        self._last_end = -1

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"range [{offset}, {offset + length}) is outside the "
                             f"{self.size}-byte {self.name} stream")

    def readinto(self, buf: Any, offset: int) -> None:
        """Fill ``buf`` with bytes [offset, offset+len(buf)). Raises BlockError on corruption."""
        mv = memoryview(buf)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        n = len(mv)
        self._check(offset, n)
        if n:
            arc = self.archive
            arc._read(self._idx, mv, self._base + offset)
            end = self._base + offset + n
            if arc._readahead is not None:
                arc._readahead.observe(self._idx, self._base + offset, end,
                                       self._base + self.size)

    def read(self, offset: int, length: int) -> bytes:
        buf = bytearray(length)
        self.readinto(buf, offset)
        return bytes(buf)

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(start, length, is_zero) runs from ``offset`` covering part or all of the range."""
        self._check(offset, length)
        if length == 0:
            return []
        base = self._base
        return [(a - base, n, z)
                for a, n, z in self.archive._extents(self._idx, base + offset, length)]

    def enable_readahead(self, window: int = 8 << 20, chunk: int = 2 << 20,
                         min_avg_block: int = READAHEAD_MIN_AVG_BLOCK, threads: int = 1
                         ) -> None:
        """Start the archive's readahead worker (call after any fork, e.g. nbdkit's
        after_fork): sequential readers get up to ``window`` bytes decompressed ahead, in
        jobs of ``chunk`` bytes.  Keep ``window`` well below the block cache size."""
        st = self.archive._streams[self._idx]
        if st.block_count and st.size // st.block_count < min_avg_block:
            # Measured: with small blocks the work is GIL-bound Python, a second thread
            # only adds contention (bench/RESULTS.md).
            return
        self.archive._ra(window, chunk, threads)


class MemberView(Stream):
    """The bytes of one directory-archive member, as a Stream-like object."""

    def __init__(self, archive: Archive, idx: int, member: Member) -> None:
        super().__init__(archive, idx, base=member.offset, size=member.size)
        self.member = member
        self.name = member.path


def open_archive(path: str | os.PathLike, parent_dirs: Iterable[str] = (),
                 cache_size: int = 64 << 20, *, verify: str = "crc") -> Archive:
    """Open and validate an archive and its parent chain (raises FormatError).

    ``verify="crc"`` checks the CRC-32 of every payload read; ``verify="hash"`` also checks
    the BLAKE3 of every decompressed block against its record (docs/hxz-format.md §14.2)."""
    try:
        return Archive(os.fspath(path), tuple(parent_dirs), cache_size, verify=verify)
    except HxzError:
        raise
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e.strerror or e}") from None
