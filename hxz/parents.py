"""Thin archives: parent references resolved by BLAKE3 hash (docs/hxz-format.md §7.3).

Each archive has a :class:`HashIndex`: the first lookup builds, from every index page of
that archive read once, a map hash -> record location: about 150 bytes of RAM per distinct
block and 213 KB of index read per 4096 blocks.  This is the one structure that grows with
archive size, and only for archives that are some thin archive's parent.  Stored records win
over parent references when a hash occurs as both.

A :class:`ParentChain` looks a child's reference up in its parents, in order, and fetches
the block through the parent's own block store, so a parent's CRC (and hash) checks apply.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from .blockstore import BlockStore
from .errors import BlockError
from .index import PARENT_REF, Page
from .pages import PageTable
from .streamid import StreamId


class HashIndex:
    """hash -> (stream, page number, record) over one archive's records, built lazily."""

    def __init__(self, pages: PageTable) -> None:
        self._pages = pages
        self._map: dict[bytes, int] | None = None
        self._lock = threading.Lock()

    def find(self, h: bytes) -> tuple[Page, int] | None:
        """The page and record index of a record whose block has BLAKE3 ``h``."""
        with self._lock:
            if self._map is None:
                self._map = self._build()
            code = self._map.get(h)
        if code is None:
            return None
        sid, pn, k = code >> 61, (code >> 20) & ((1 << 41) - 1), code & ((1 << 20) - 1)
        return self._pages.page(StreamId(sid), pn), k

    def _build(self) -> dict[bytes, int]:
        m: dict[bytes, int] = {}
        refs: set[bytes] = set()     # hashes whose entry so far is a parent reference
        for sid in StreamId:
            for pn in range(len(self._pages.index(sid).pages)):
                page = self._pages.decode(sid, pn)
                offs = page.offs
                for k in range(page.n):
                    h = page.hash(k)
                    prev = m.get(h)
                    is_ref = offs[k] == PARENT_REF
                    if prev is None or (h in refs and not is_ref):
                        m[h] = (sid << 61) | (pn << 20) | k
                        if is_ref:
                            refs.add(h)
                        else:
                            refs.discard(h)
        return m


class Parent(Protocol):
    """What a chain needs of a parent archive."""

    name: str
    blocks: BlockStore
    hashes: HashIndex

    def record_is_zero(self, page: Page, k: int) -> bool: ...


class ParentChain:
    """The parents of one archive, searched in the order its header lists them."""

    def __init__(self, child: BlockStore, parents: Sequence[Parent]) -> None:
        self._child = child
        self.parents = list(parents)

    def locate(self, page: Page, k: int) -> tuple[Parent, Page, int]:
        """The parent record holding the block that record k of a child page refers to."""
        h = page.hash(k)
        for p in self.parents:
            found = p.hashes.find(h)
            if found is not None:
                ppage, pk = found
                if ppage.llens[pk] != page.llens[k]:
                    raise BlockError(f"{self._child.where(page, k)}: parent block "
                                     f"{h.hex()[:16]} in {p.name} has length "
                                     f"{ppage.llens[pk]}, reference says {page.llens[k]}")
                return p, ppage, pk
        names = ", ".join(p.name for p in self.parents) or "none"
        raise BlockError(f"{self._child.where(page, k)}: parent block hash {h.hex()[:16]}... "
                         f"not found in parent archive(s): {names}")

    def content(self, page: Page, k: int) -> Any:
        p, ppage, pk = self.locate(page, k)
        return p.blocks.blocks(ppage, pk, pk + 1)[0]

    def is_zero(self, page: Page, k: int) -> bool:
        try:
            p, ppage, pk = self.locate(page, k)
        except BlockError:
            return False
        return p.record_is_zero(ppage, pk)
