"""Block status: which logical ranges are known to be all zeros.

Mixed into :class:`hxz.archive.Archive`.  Zero records and parent references to zero
content are zero; stored payloads are checked only when their size makes zeros possible
(any sane compressor shrinks zeros far below 1/32), and the verdict is cached per payload
offset, so the payload every zero chunk of a given size dedups to is decoded once.
Extents are advisory: a block that cannot be produced is reported as data.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from .errors import BlockError
from .index import PARENT_REF, Page

_ZERO = bytes(1 << 20)
_ZERO_MV = memoryview(_ZERO)
# extents() stops after this many records so that one call stays short.
EXTENTS_RECORD_BUDGET = 1 << 16


class ZeroExtents:
    """Zero detection and extents (a mixin of Archive)."""

    def _record_is_zero(self, page: Page, k: int) -> bool:
        """True when record k is known to be all zeros.  Extents are advisory: a block
        that cannot be produced is reported as data, and the read reports the error."""
        off = page.offs[k]
        if off == PARENT_REF:
            try:
                p, ppage, pk = self._locate_in_parents(page, k)
            except BlockError:
                return False
            return p._record_is_zero(ppage, pk)
        n = page.llens[k]
        ln = page.lens[k]
        if ln == 0:
            return True
        # Any sane compressor shrinks n zero bytes far below n/32: larger payloads cannot be
        # all zeros, so they are classified without decompressing.
        if ln > (n >> 5) + 64:
            return False
        verdicts = self._zero_verdicts
        v = verdicts.get(off)
        if v is None:
            try:
                data = self._contents(page, k, k + 1)[0]
            except BlockError:
                return False
            v = data == _ZERO_MV[:n] if n <= len(_ZERO) else data.count(0) == n
            if len(verdicts) > 1 << 20:
                verdicts.clear()
            verdicts[off] = v
        return v

    def _zero_flags(self, page: Page) -> bytes:
        """Per-record all-zero verdicts of a page (b"\\x01" = zeros), computed once per
        page load.  Only records whose payload is far smaller than their content (zero
        records, parent references, tiny compressed payloads) can be zero, so the Python
        work is proportional to those candidates, not to the page."""
        flags = page.zero_flags
        if flags is None:
            n = page.n
            out = bytearray(n)
            llens = page.llens
            cands = [k for k, ln, size in zip(range(n), page.lens, llens, strict=False)
                     if ln <= (size >> 5) + 64 and size]
            for k in cands:
                if self._record_is_zero(page, k):
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

    def _extents(self, sidx: int, offset: int, length: int) -> list[tuple[int, int, bool]]:
        st = self._streams[sidx]
        end = min(offset + length, st.size)
        pos = offset
        runs: list[list] = []
        budget = EXTENTS_RECORD_BUDGET
        while pos < end and budget > 0:
            pn = bisect_right(st.page_starts, pos) - 1
            try:
                page = self._page(sidx, pn)
                flags = self._zero_flags(page)
            except BlockError:
                # A page that cannot be loaded is reported as data (extents are advisory);
                # reading it fails with the page's error.
                stop = min(end, st.pages[pn + 1].start_logical if pn + 1 < len(st.pages)
                           else end)
                if runs and not runs[-1][2]:
                    runs[-1][1] = stop
                else:
                    runs.append([pos, stop, False])
                pos = stop
                continue
            starts = page.starts
            k = page.find(pos)
            j = bisect_left(starts, end, k, page.n)
            if j - k > budget:
                j = k + budget
            budget -= j - k
            while k < j:
                z = flags[k]
                # Jump to the next record whose verdict differs (C-speed scan).
                nxt = flags.find(b"\x00" if z else b"\x01", k, j)
                if nxt < 0:
                    nxt = j
                stop = starts[nxt]
                if stop > end:
                    stop = end
                if stop <= pos:
                    pass
                elif runs and runs[-1][2] == bool(z):
                    runs[-1][1] = stop
                else:
                    runs.append([pos, stop, bool(z)])
                pos = stop
                k = nxt
        return [(a, b - a, z) for a, b, z in runs]


