"""Copying a stream range into a read buffer, record by record.

Edge records a request consumes partly go through the block cache; records it consumes whole
take the bulk path: small stored blocks that no other record of the page shares skip the
cache, their adjacent payloads read at once and decoded straight into the caller's buffer
(per-block Python overhead is the budget for 1-8 KiB blocks).  Every block still comes out
of the block store's checks: the inlined LZ4 path hands anything unusual to
``BlockStore.check_and_decode``.
"""

from __future__ import annotations

import zlib

from .blockstore import BlockStore
from .codecs import _lz4_decompress, _prefix
from .index import PARENT_REF, Page

# Blocks below this size that a bulk read consumes whole and that no other record of the
# page shares are decoded without going through the cache: re-decoding one costs less
# than the cache bookkeeping.
TRANSIENT_MAX = 64 << 10
# A run of adjacent payloads read at once stops growing past this span.
MAX_RUN = 8 << 20


class Copier:
    """Fills read buffers from one archive's block store."""

    def __init__(self, store: BlockStore) -> None:
        self._store = store

    def copy(self, page: Page, i: int, j: int, mv: memoryview, base: int, end: int) -> None:
        """Copy the parts of records i..j-1 inside [base, end) to ``mv`` (mv[0] is
        logical ``base``).  Edge records may be partly consumed and go through the
        cache; records in between are consumed whole and take the bulk path."""
        if j - i <= 2:
            self._copy_cached(page, i, j, mv, base, end)
        else:
            self._copy_cached(page, i, i + 1, mv, base, end)
            self._copy_bulk(page, i + 1, j - 1, mv, base, end)
            self._copy_cached(page, j - 1, j, mv, base, end)

    def _copy_cached(self, page: Page, i: int, j: int, mv: memoryview, base: int,
                     end: int) -> None:
        starts = page.starts
        blocks = self._store.blocks(page, i, j)
        for k in range(i, j):
            s = starts[k]
            e = starts[k + 1]
            if e == s:
                continue
            lo = s if s > base else base
            hi = e if e < end else end
            if lo == s and hi == e:
                mv[s - base:e - base] = blocks[k - i]
            else:
                mv[lo - base:hi - base] = memoryview(blocks[k - i])[lo - s:hi - s]

    def _copy_bulk(self, page: Page, i: int, j: int, mv: memoryview, base: int,
                   end: int) -> None:
        """Per-block Python overhead is the budget for 1-8 KiB blocks, so small stored
        blocks that no other record of the page shares skip the cache entirely."""
        offs, lens, llens = page.offs, page.lens, page.llens
        reused = page.reused
        cached = self._store.cached
        run: list[int] = []
        run_stop = -1
        for k in range(i, j):
            off = offs[k]
            n = llens[k]
            if (0 < n < TRANSIENT_MAX and lens[k] and off != PARENT_REF
                    and off not in reused and cached(off) is None):
                if run and (off != run_stop or run_stop - offs[run[0]] > MAX_RUN):
                    self._decode_run_into(page, run, mv, base)
                    run = []
                run.append(k)
                run_stop = off + lens[k]
            else:
                if run:
                    self._decode_run_into(page, run, mv, base)
                    run = []
                if n:
                    self._copy_cached(page, k, k + 1, mv, base, end)
        if run:
            self._decode_run_into(page, run, mv, base)

    def _decode_run_into(self, page: Page, run: list[int], mv: memoryview, base: int) -> None:
        """Adjacent small payloads: one read, then CRC, decode and copy per record, with an
        inlined LZ4 fast path; anything unusual goes to ``check_and_decode``."""
        offs, lens, llens, crcs, starts = page.offs, page.lens, page.llens, page.crcs, \
            page.starts
        start = offs[run[0]]
        buf = self._store.read_span(page, run, start, offs[run[-1]] + lens[run[-1]])
        crc32 = zlib.crc32
        lz4 = self._store.compression == "lz4"
        verify_hash = self._store.verify_hash
        rel = 0
        for k in run:
            ln = lens[k]
            n = llens[k]
            payload = buf[rel:rel + ln]
            data = None
            if lz4 and ln > 4 and crc32(payload) == crcs[k] and _prefix(buf, rel)[0] == n:
                try:
                    data = _lz4_decompress(buf[rel + 4:rel + ln], uncompressed_size=n)
                except Exception:  # noqa: BLE001 - re-decoded below for the message
                    data = None
                if data is not None and len(data) != n:
                    data = None
                if data is not None and verify_hash:
                    self._store.check_hash(page, k, data, cached=False)
            if data is None:
                data = self._store.check_and_decode(page, k, payload)
            rel += ln
            o = starts[k] - base
            mv[o:o + n] = data
