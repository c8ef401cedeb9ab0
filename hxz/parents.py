"""Resolving parent references of thin archives by BLAKE3 hash (spec §7.3).

Mixed into :class:`hxz.archive.Archive`.  The first parent reference met builds, per
parent, a map hash -> record location by reading every index page of that parent once:
about 150 bytes of RAM per distinct block of the parent and 213 KB of index read per
4096 blocks.  This is the one structure that grows with archive size, and only for thin
archives.  Stored records win over parent references when a hash occurs as both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import BlockError
from .index import PARENT_REF, Page, decode_page

if TYPE_CHECKING:
    from .archive import Archive


class ParentResolver:
    """Hash lookups in this archive and reads through its parents (a mixin of Archive)."""

    def _find_hash(self, h: bytes) -> tuple[int, int, int] | None:
        """Location (stream index, page number, record) of a record with BLAKE3 ``h``."""
        with self._hash_lock:
            if self._hashmap is None:
                self._hashmap = self._build_hashmap()
            code = self._hashmap.get(h)
        if code is None:
            return None
        return code >> 61, (code >> 20) & ((1 << 41) - 1), code & ((1 << 20) - 1)

    def _build_hashmap(self) -> dict[bytes, int]:
        m: dict[bytes, int] = {}
        refs: set[bytes] = set()     # hashes whose entry so far is a parent reference
        for sidx, st in enumerate(self._streams):
            for pn, entry in enumerate(st.pages):
                page = decode_page(self._pread(entry.offset, entry.length), st, pn,
                                   self.path, self.header.index_offset)
                offs, raw = page.offs, page.raw
                for k in range(page.n):
                    at = 28 + 52 * k
                    h = raw[at:at + 32]
                    prev = m.get(h)
                    is_ref = offs[k] == PARENT_REF
                    if prev is None or (h in refs and not is_ref):
                        m[h] = (sidx << 61) | (pn << 20) | k
                        if is_ref:
                            refs.add(h)
                        else:
                            refs.discard(h)
        return m

    def _locate_in_parents(self, page: Page, k: int) -> tuple[Archive, Page, int]:
        h = page.hash(k)
        for p in self.parents:
            loc = p._find_hash(h)
            if loc is not None:
                sidx, pn, pk = loc
                ppage = p._page(sidx, pn)
                if ppage.llens[pk] != page.llens[k]:
                    raise BlockError(f"{self._where(page, k)}: parent block {h.hex()[:16]} in "
                                     f"{p.path} has length {ppage.llens[pk]}, reference says "
                                     f"{page.llens[k]}")
                return p, ppage, pk
        names = ", ".join(p.path for p in self.parents) or "none"
        raise BlockError(f"{self._where(page, k)}: parent block hash {h.hex()[:16]}... not "
                         f"found in parent archive(s): {names}")

    def _parent_content(self, page: Page, k: int) -> Any:
        p, ppage, pk = self._locate_in_parents(page, k)
        return p._contents(ppage, pk, pk + 1)[0]

