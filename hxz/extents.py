"""Block status: which logical ranges are known to be all zeros.

Zero records and parent references to zero content are zero.  A stored record is zero when its
payload is small enough for zeros (any sane compressor shrinks zeros far below 1/32) and its
BLAKE3 ``hash`` is that of ``logical_len`` zero bytes: the index alone answers, so a remote
archive fetches no payload for a block status query.  That trusts the record exactly as a read
under ``verify=crc`` does (docs/hxz-format.md §14).  Under ``verify=hash`` the payload is also
decoded and checked, once per payload.  Extents are advisory: a block that cannot be produced,
or a page that cannot be loaded, is reported as data; reading it reports the error.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from . import digest
from .blockstore import BlockStore, zeros
from .errors import BlockError
from .index import PARENT_REF, Page
from .pages import PageTable
from .streamid import StreamId

# extents() stops after this many records so that one call stays short.
EXTENTS_RECORD_BUDGET = 1 << 16


class ZeroMap:
    """Zero verdicts of one archive's records, and the extents built from them."""

    def __init__(self, pages: PageTable, blocks: BlockStore,
                 parent_is_zero: Callable[[Page, int], bool]) -> None:
        self._pages = pages
        self._blocks = blocks
        self._parent_is_zero = parent_is_zero
        # verify=hash: the user asked that no record be trusted unread, extents included.
        self._confirm = blocks.verify_hash
        # (payload offset, logical_len) -> decodes to zeros; only when decoding.
        self._verdicts: dict[tuple[int, int], bool] = {}

    def record_is_zero(self, page: Page, k: int) -> bool:
        """True when record k is known to be all zeros."""
        off = page.offs[k]
        if off == PARENT_REF:
            return self._parent_is_zero(page, k)
        n = page.llens[k]
        ln = page.lens[k]
        if ln == 0:
            return True
        # Any sane compressor shrinks n zero bytes far below n/32: larger payloads cannot be
        # all zeros, so they are classified without decompressing.
        if ln > (n >> 5) + 64:
            return False
        try:
            if page.hash(k) != digest.zeros_hash(n):
                return False
        except digest.MissingBlake3:
            # Without blake3 the hash cannot vouch for the record: decode it as a read would
            # (verify=hash already refused to open without the package).
            return self._decodes_to_zeros(page, k)
        return self._decodes_to_zeros(page, k) if self._confirm else True

    def _decodes_to_zeros(self, page: Page, k: int) -> bool:
        """Decode record k (fetching its payload) and tell whether it is all zeros; the
        verdict is cached per payload and length, so the payload every zero chunk of a
        given size dedups to is decoded once."""
        n = page.llens[k]
        key = (page.offs[k], n)
        v = self._verdicts.get(key)
        if v is None:
            try:
                data = self._blocks.blocks(page, k, k + 1)[0]
            except BlockError:
                return False
            v = data == zeros(n) if n <= 1 << 20 else data.count(0) == n
            if len(self._verdicts) > 1 << 20:
                self._verdicts.clear()
            self._verdicts[key] = v
        return v

    def flags(self, page: Page) -> bytes:
        """Per-record all-zero verdicts of a page (b"\\x01" = zeros), computed once per
        page load.  Only records whose payload is far smaller than their content (zero
        records, parent references, tiny compressed payloads) can be zero, so the Python
        work is proportional to those candidates, not to the page."""
        flags = page.zero_flags
        if flags is None:
            n = page.n
            out = bytearray(n)
            llens = page.llens
            for k in [k for k, ln, size in zip(range(n), page.lens, llens, strict=False)
                      if ln <= (size >> 5) + 64 and size]:
                if self.record_is_zero(page, k):
                    out[k] = 1
            if llens.count(0):
                # Empty records take a neighbour's verdict so they never split a run.
                nonempty = [k for k in range(n) if llens[k]]
                if nonempty:
                    for k in range(n):
                        if not llens[k]:
                            nb = bisect_left(nonempty, k)
                            out[k] = out[nonempty[nb - 1 if nb else 0]]
            flags = page.zero_flags = bytes(out)
        return flags

    def extents(self, sid: StreamId, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(start, length, is_zero) runs from ``offset``, covering part or all of the
        range (at most EXTENTS_RECORD_BUDGET records' worth)."""
        end = min(offset + length, self._pages.index(sid).size)
        runs: list[list] = []
        pos = offset
        budget = EXTENTS_RECORD_BUDGET
        while pos < end and budget > 0:
            try:
                for page, k, j in self._pages.walk(sid, pos, end):
                    j = min(j, k + budget)
                    budget -= j - k
                    pos = self._page_runs(page, k, j, pos, end, runs)
                    if budget <= 0:
                        break
            except BlockError:
                # A page that cannot be loaded is data; its reads fail with its error.
                pos = self._add(runs, pos, min(end, self._pages.page_end(sid, pos)), False)
        return [(a, b - a, z) for a, b, z in runs]

    def _page_runs(self, page: Page, k: int, j: int, pos: int, end: int,
                   runs: list[list]) -> int:
        flags = self.flags(page)
        starts = page.starts
        while k < j:
            z = flags[k]
            # Jump to the next record whose verdict differs (C-speed scan).
            nxt = flags.find(b"\x00" if z else b"\x01", k, j)
            if nxt < 0:
                nxt = j
            pos = self._add(runs, pos, min(starts[nxt], end), bool(z))
            k = nxt
        return pos

    @staticmethod
    def _add(runs: list[list], pos: int, stop: int, zero: bool) -> int:
        if stop > pos:
            if runs and runs[-1][2] == zero and runs[-1][1] == pos:
                runs[-1][1] = stop
            else:
                runs.append([pos, stop, zero])
            return stop
        return pos
