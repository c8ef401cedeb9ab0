"""An opened archive: its parts, its parents, and the public reading API.

An :class:`Archive` holds parts rather than being them: the payload source, a
:class:`~hxz.pages.PageTable` (index pages and the one range walk), a
:class:`~hxz.blockstore.BlockStore` (source, codec, block cache, the one check-and-decode),
a :class:`~hxz.parents.ParentChain` for thin archives and a :class:`~hxz.extents.ZeroMap`
for block status.  One NBD read goes ``Stream.readinto`` -> ``Archive.readinto`` ->
``PageTable.walk`` -> ``Copier.copy`` -> ``BlockStore.blocks`` (or its bulk path) ->
``PayloadSource.pread``.

Caches are shared by an archive and its parents: index pages, and decompressed blocks keyed
by (archive token, payload offset) so deduplicated records share one entry.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import digest
from .blockstore import BlockStore
from .cache import LRUCache
from .chain import MAX_DEPTH, find_parent
from .copier import Copier
from .errors import BlockError, FormatError, HxzError
from .extents import ZeroMap
from .index import Page
from .layout import read_layout
from .manifest import Member
from .pages import PageTable
from .parents import HashIndex, ParentChain
from .readahead import Readahead
from .source import FileSource, PayloadSource
from .stream import MemberView, Stream
from .streamid import StreamId, stream_id

__all__ = ["Archive", "ParentLocator", "VERIFY_MODES", "open_archive"]

VERIFY_MODES = ("crc", "hash")
# (parent path recorded in the child's header, the child's source) -> the parent's source,
# or None to fall back to the local search (parent_dirs).
ParentLocator = Callable[[str, PayloadSource], "PayloadSource | None"]
_tokens = itertools.count(1)


class _Caches:
    """Caches shared by an archive and its parents."""

    def __init__(self, cache_size: int) -> None:
        page_budget = max(cache_size // 4, 4 << 20)
        self.pages = LRUCache(page_budget, lambda page: page.nbytes)
        self.blocks = LRUCache(max(cache_size - page_budget, 1 << 20))


class Archive:
    """An opened .hxz archive (use :func:`open_archive`); it owns ``source``."""

    def __init__(self, source: PayloadSource, parent_dirs: Sequence[str] = (),
                 cache_size: int = 64 << 20, *, locator: ParentLocator | None = None,
                 verify: str = "crc", _caches: _Caches | None = None,
                 _chain: tuple[str, ...] = ()) -> None:
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify={verify!r}: expected crc or hash")
        self.source = source
        self.path = source.name
        self.verify = verify
        self.parents: list[Archive] = []
        self._readahead: Readahead | None = None
        self._ra_lock = threading.Lock()
        try:
            self._open(_caches or _Caches(cache_size), list(parent_dirs), locator, _chain)
        except BaseException:
            self.close()
            raise

    def _open(self, caches: _Caches, parent_dirs: list[str], locator: ParentLocator | None,
              chain: tuple[str, ...]) -> None:
        if self.verify == "hash":
            try:
                digest.require()
            except digest.MissingBlake3 as e:
                raise FormatError(f"{self.path}: verify=hash: {e}") from None
        try:
            layout = read_layout(self.source)
            self.header = layout.header
            self.compression = layout.header.compression
            self._members = layout.members
            token = next(_tokens)
            self.pages = PageTable(self.source, layout.streams, self.header.index_offset,
                                   caches.pages, token)
            for sid in StreamId:
                # One page per stream at open: its records must end exactly at the stream
                # size (docs/hxz-format.md §4), so a size the index does not back is refused.
                if layout.streams[sid].pages:
                    self.pages.page(sid, len(layout.streams[sid].pages) - 1)
        except BlockError as e:
            raise FormatError(str(e)) from None
        self.blocks = BlockStore(self.source, self.compression, layout.decode, caches.blocks,
                                 token, verify_hash=self.verify == "hash")
        self._copier = Copier(self.blocks)
        self.hashes = HashIndex(self.pages)
        # Two non-UTF-8 names can become equal after lossy conversion
        # (docs/hxz-format.md §19): the first such file answers to the name.
        self._member_map = {m.path: m for m in reversed(self._members)}
        self._open_parents(caches, parent_dirs, locator, chain)
        self.chain = ParentChain(self.blocks, self.parents)
        self.blocks.parent_content = self.chain.content
        self.zeros = ZeroMap(self.pages, self.blocks, self.chain.is_zero)

    def _open_parents(self, caches: _Caches, parent_dirs: list[str],
                      locator: ParentLocator | None, chain: tuple[str, ...]) -> None:
        chain = chain + (_identity(self.source),)
        for stored in self.header.parent_paths:
            src = locator(stored, self.source) if locator is not None else None
            if src is None:
                found = find_parent(stored, self.path, parent_dirs)
                if found is None:
                    raise FormatError(f"{self.path}: parent archive {stored!r} not found "
                                      f"(searched next to the archive, the current directory "
                                      f"and parent-dir)")
                if found in chain:
                    raise FormatError(f"{self.path}: parent chain has a cycle through {found}")
                src = found
            elif _identity(src) in chain:
                src.close()
                raise FormatError(f"{self.path}: parent chain has a cycle through {src.name}")
            if len(chain) > MAX_DEPTH:
                if not isinstance(src, str):
                    src.close()
                raise FormatError(f"{self.path}: parent chain deeper than {MAX_DEPTH}")
            self.parents.append(Archive(FileSource(src) if isinstance(src, str) else src,
                                        parent_dirs, locator=locator, verify=self.verify,
                                        _caches=caches, _chain=chain))

    # ------------------------------------------------------------- public API
    @property
    def name(self) -> str:
        return self.path

    def stream(self, name: str | StreamId = StreamId.DISK) -> Stream:
        """A stream by StreamId or name: disk or memory (aliases primary, secondary)."""
        return Stream(self, stream_id(name))

    def has_stream(self, name: str | StreamId) -> bool:
        """True when the archive holds that stream (one with index pages)."""
        return bool(self.pages.index(stream_id(name)).pages)

    def stream_size(self, sid: StreamId) -> int:
        return self.pages.index(sid).size

    def members(self) -> list[Member]:
        return list(self._members)

    def member(self, path: str) -> MemberView:
        m = self._member_map[path]
        return MemberView(self, stream_id(m.stream), m)

    def readinto(self, sid: StreamId, mv: memoryview, offset: int, limit: int) -> None:
        """Fill ``mv`` with stream bytes from ``offset`` (the caller checked the range;
        ``limit`` is where the reader's view ends, for readahead)."""
        end = offset + len(mv)
        for page, i, j in self.pages.walk(sid, offset, end):
            self._copier.copy(page, i, j, mv, offset, end)
        if self._readahead is not None:
            self._readahead.observe(sid, offset, end, limit)

    def prefetch(self, sid: StreamId, offset: int, length: int) -> None:
        """Warm the block cache for a range; errors are left for the real read."""
        for page, i, j in self.pages.walk(sid, offset, min(offset + length,
                                                           self.stream_size(sid))):
            self.blocks.blocks(page, i, j)

    def extents(self, sid: StreamId, offset: int, length: int) -> list[tuple[int, int, bool]]:
        return self.zeros.extents(sid, offset, length)

    def record_is_zero(self, page: Page, k: int) -> bool:
        return self.zeros.record_is_zero(page, k)

    def enable_readahead(self, window: int, chunk: int, threads: int = 1) -> Readahead:
        """Start (once) the archive's readahead worker; call after any fork."""
        with self._ra_lock:
            if self._readahead is None:
                self._readahead = Readahead(self.prefetch, window, chunk, threads)
            return self._readahead

    @property
    def readahead(self) -> Readahead | None:
        return self._readahead

    @property
    def block_cache(self) -> LRUCache:
        return self.blocks.cache

    def info(self) -> dict[str, Any]:
        h = self.header
        disk, memory = (self.pages.index(sid) for sid in StreamId)
        return {
            "path": self.path,
            "compression": self.compression,
            "file_size": self.source.size,
            "disk_size": disk.size,
            "memory_size": memory.size,
            "disk_blocks": disk.block_count,
            "memory_blocks": memory.block_count,
            "disk_pages": len(disk.pages),
            "memory_pages": len(memory.pages),
            "parents": [p.path for p in self.parents],
            "parent_chain": self.chain_paths(),
            "members": len(self._members),
            "cdc_params": list(h.cdc_params) if h.cdc_params else None,
            "dictionary": h.dictionary is not None,
            "signed": h.signature is not None,
            "verify": self.verify,
        }

    def chain_paths(self) -> list[str]:
        out = []
        for p in self.parents:
            out.append(p.path)
            out.extend(p.chain_paths())
        return out

    def close(self) -> None:
        ra, self._readahead = self._readahead, None
        if ra is not None:
            ra.stop()
        for p in self.parents:
            p.close()
        self.source.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hxz.Archive {self.path!r} {getattr(self, 'compression', '?')}>"


def _identity(source: PayloadSource | str) -> str:
    """What a cycle check compares: the real path of a local file, else the source name."""
    name = source if isinstance(source, str) else source.name
    return os.path.realpath(name) if isinstance(source, (str, FileSource)) else name


def open_archive(target: str | os.PathLike | PayloadSource, parent_dirs: Iterable[str] = (),
                 cache_size: int = 64 << 20, *, locator: ParentLocator | None = None,
                 verify: str = "crc") -> Archive:
    """Open and validate an archive and its parent chain (raises FormatError).

    ``target`` is a path or a PayloadSource (the archive then owns it).  ``locator`` finds
    parents that are not local files; ``verify="crc"`` checks the CRC-32 of every payload,
    ``verify="hash"`` also the BLAKE3 of every decompressed block (docs/hxz-format.md
    §14.2)."""
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify={verify!r}: expected crc or hash")
    try:
        source = target if isinstance(target, PayloadSource) else FileSource(target)
        return Archive(source, tuple(parent_dirs), cache_size, locator=locator, verify=verify)
    except HxzError:
        raise
    except OSError as e:
        name = target.name if isinstance(target, PayloadSource) else os.fspath(target)
        raise FormatError(f"{name}: cannot read: {e.strerror or e}") from None
