"""Producing block contents and copying them into read buffers (spec §6, §7, §13).

Mixed into :class:`hxz.archive.Archive`; relies on its ``_fd``, ``_shared`` caches,
``_token``, ``_decode``, ``_streams``, ``_page`` and the parent mixin.

Two paths: records that a request consumes partly (its edges), or that are large, shared
through dedup, zero or parent references go through the block cache with batched
single-flight claims; small stored blocks consumed whole take a bulk path that reads
adjacent payloads with one pread and decodes straight into the caller's buffer.  LZ4
blocks loaded into the cache use the native helpers (hxz/native.py) when available: the
payloads are read into a pooled buffer and CRC-checked and decoded from it by libdeflate
and liblz4 without intermediate Python objects.
"""

from __future__ import annotations

import os
import threading
import zlib
from bisect import bisect_left, bisect_right
from typing import Any

from . import digest, native
from .codecs import _lz4_decompress, _prefix
from .errors import BlockError
from .index import PARENT_REF, Page

_ZERO = bytes(1 << 20)
_ZERO_MV = memoryview(_ZERO)
# Adjacent payloads missing from the cache are fetched with one pread up to this span.
MAX_COALESCE = 8 << 20
# Blocks below this size that a bulk read consumes whole and that no other record of the
# page shares are decoded without going through the cache: re-decoding one costs less
# than the cache bookkeeping (per-block overhead is the budget for 1-8 KiB blocks).
TRANSIENT_MAX = 64 << 10
_STREAM_LABEL = ("disk", "memory")
# Reads spanning less than this keep the python-lz4/zlib path: for a few KiB the fixed
# cost of the ctypes calls outweighs the copy they save (measured with 4 KiB QD1 reads
# of 1-8 KiB blocks).
NATIVE_MIN = 32 << 10


def _zeros(n: int) -> Any:
    return _ZERO_MV[:n] if n <= len(_ZERO) else bytes(n)


# Payload read buffers reused across calls (a fresh allocation per read costs page faults
# and a munmap per read).  A small shared free list rather than one buffer per thread:
# nbdkit runs up to 16 request threads per connection, and memory must stay bounded.
_free_scratch: list[tuple[bytearray, memoryview, int]] = []
SCRATCH_POOL = 4
SCRATCH_KEEP = 4 << 20


def _take_scratch(n: int) -> tuple[bytearray, memoryview, int]:
    """A read buffer of at least ``n`` (> 0) bytes as (buffer, memoryview, address);
    hand it back with ``_give_scratch``."""
    try:
        cur = _free_scratch.pop()           # list.pop/append are atomic under the GIL
    except IndexError:
        cur = None
    if cur is None or len(cur[0]) < n:
        b = bytearray(max(n, 256 << 10))
        cur = (b, memoryview(b), native.address(b))
    return cur


def _give_scratch(cur: tuple[bytearray, memoryview, int]) -> None:
    if len(cur[0]) <= SCRATCH_KEEP and len(_free_scratch) < SCRATCH_POOL:
        _free_scratch.append(cur)


class BlockReader:
    """Block production and the read path (a mixin of Archive)."""

    def _where(self, page: Page, k: int) -> str:
        return (f"{self.path}: {_STREAM_LABEL[0 if page.stream == 'primary' else 1]} stream "
                f"block at logical offset {page.starts[k]} (payload offset {page.offs[k]}, "
                f"{page.lens[k]} bytes)")

    # ------------------------------------------------------------ block access
    def _decode_checked(self, payload: Any, page: Page, k: int) -> bytes:
        if len(payload) != page.lens[k]:
            raise BlockError(f"{self._where(page, k)}: payload truncated ({len(payload)} bytes "
                             f"readable)")
        crc = zlib.crc32(payload)
        if crc != page.crcs[k]:
            raise BlockError(f"{self._where(page, k)}: CRC mismatch (stored "
                             f"{page.crcs[k]:#010x}, computed {crc:#010x})")
        try:
            return self._decode(payload, page.llens[k])
        except ValueError as e:
            raise BlockError(f"{self._where(page, k)}: {e}") from None

    def _contents(self, page: Page, i: int, j: int) -> list[Any]:
        """Contents (bytes-like, exactly logical_len long) of records i..j-1 of a page."""
        offs, lens, llens = page.offs, page.lens, page.llens
        cget = self._shared.blocks.get
        tok = self._token
        res: list[Any] = [None] * (j - i)
        missing: list[int] = []
        for k in range(i, j):
            off = offs[k]
            n = llens[k]
            if n == 0:
                res[k - i] = b""
            elif off == PARENT_REF:
                res[k - i] = self._parent_content(page, k)
            elif lens[k] == 0:
                res[k - i] = _zeros(n)
            else:
                v = cget((tok, off))
                if v is None:
                    missing.append(k)
                else:
                    res[k - i] = v
        if missing:
            self._load_stored(page, missing, res, i)
        if self._hash:
            # Every use of a block is checked against its own record: a cached payload that
            # a damaged record points at is not vouched for by the record that loaded it.
            verified = self._verified
            for k in range(i, j):
                if lens[k] and llens[k] and offs[k] != PARENT_REF \
                        and verified.get(offs[k]) != page.hash(k):
                    self._check_hash(page, k, res[k - i])
        return res

    def _check_hash(self, page: Page, k: int, data: Any) -> None:
        """verify=hash: BLAKE3 of the decompressed block must be the record's."""
        want = page.hash(k)
        got = digest.blake3(data)
        if got != want:
            raise BlockError(f"{self._where(page, k)}: BLAKE3 mismatch (record "
                             f"{want.hex()[:16]}..., block {got.hex()[:16]}...)")
        if len(self._verified) > 1 << 20:
            self._verified.clear()
        self._verified[page.offs[k]] = want

    def _load_stored(self, page: Page, ks: list[int], res: list[Any], base: int) -> None:
        """Produce stored records ``ks`` (cache misses) into ``res[k - base]``.

        Keys are claimed as a batch so that a concurrent reader (the readahead worker)
        waits for this thread instead of decompressing the same block again; payloads
        adjacent in the file are read with one pread.
        """
        offs, lens, llens, crcs = page.offs, page.lens, page.llens, page.crcs
        cache = self._shared.blocks
        tok = self._token
        first_of: dict[int, int] = {}
        uniq: list[int] = []
        dups: list[int] = []
        for k in ks:
            off = offs[k]
            if off in first_of:
                dups.append(k)
            else:
                first_of[off] = k
                uniq.append(k)
        states, batch_ev = cache.claim_many([(tok, offs[k]) for k in uniq])
        owned: list[int] = []
        waits: list[tuple[int, threading.Event]] = []
        for k, st in zip(uniq, states, strict=True):
            if st is None:
                owned.append(k)
            elif isinstance(st, threading.Event):
                waits.append((k, st))
            else:
                res[k - base] = st
        filled: list[tuple[tuple[int, int], bytes]] = []
        crc32 = zlib.crc32
        decode = self._decode
        native_lz4 = native.AVAILABLE and self.compression == "lz4"
        try:
            g = 0
            while g < len(owned):
                k0 = owned[g]
                start = offs[k0]
                stop = start + lens[k0]
                h = g + 1
                while h < len(owned):
                    kk = owned[h]
                    if offs[kk] != stop or offs[kk] + lens[kk] - start > MAX_COALESCE:
                        break
                    stop = offs[kk] + lens[kk]
                    h += 1
                if native_lz4 and stop - start >= NATIVE_MIN:
                    self._load_native(page, owned[g:h], start, stop, res, base, filled)
                    g = h
                    continue
                buf = memoryview(os.pread(self._fd, stop - start, start))
                for kk in owned[g:h]:
                    rel = offs[kk] - start
                    ln = lens[kk]
                    payload = buf[rel:rel + ln]
                    if len(payload) != ln:
                        raise BlockError(f"{self._where(page, kk)}: payload truncated "
                                         f"({len(payload)} bytes readable)")
                    if crc32(payload) != crcs[kk]:
                        raise BlockError(f"{self._where(page, kk)}: CRC mismatch (stored "
                                         f"{crcs[kk]:#010x}, computed {crc32(payload):#010x})")
                    try:
                        data = decode(payload, llens[kk])
                    except ValueError as e:
                        raise BlockError(f"{self._where(page, kk)}: {e}") from None
                    filled.append(((tok, offs[kk]), data))
                    res[kk - base] = data
                g = h
        finally:
            abandoned = []
            if len(filled) != len(owned):
                done = {key for key, _ in filled}
                abandoned = [(tok, offs[k]) for k in owned if (tok, offs[k]) not in done]
            cache.settle_many(filled, abandoned, batch_ev)
        for k, ev in waits:
            ev.wait()
            off = offs[k]

            def load(k: int = k) -> bytes:
                return self._decode_checked(self._pread(offs[k], lens[k]), page, k)
            res[k - base] = cache.get_or_load((tok, off), load)
        for k in dups:
            res[k - base] = res[first_of[offs[k]] - base]

    def _load_native(self, page: Page, ks: list[int], start: int, stop: int, res: list[Any],
                     base: int, filled: list[tuple[tuple[int, int], Any]]) -> None:
        """LZ4 records ``ks``, whose payloads are adjacent in [start, stop), decoded with
        the native helpers: one pread into a pooled read buffer, CRC-32 and LZ4
        straight from it into a new block buffer (no intermediate bytes objects).

        Anything unusual (short read, CRC or prefix mismatch, decoder error) is handed to
        ``_decode_checked`` on the same payload, which raises the precise BlockError.
        """
        span = stop - start
        scratch = _take_scratch(span)
        try:
            self._decode_native(page, ks, start, span, scratch, res, base, filled)
        finally:
            _give_scratch(scratch)

    def _decode_native(self, page: Page, ks: list[int], start: int, span: int,
                       scratch: tuple[bytearray, memoryview, int], res: list[Any], base: int,
                       filled: list[tuple[tuple[int, int], Any]]) -> None:
        offs, lens, llens, crcs = page.offs, page.lens, page.llens, page.crcs
        sbuf, smv, saddr = scratch
        got = os.preadv(self._fd, [smv[:span]], start)
        crc32_at = native.crc32_at
        decompress = native.lz4_decompress
        address = native.address
        uninitialized = native.uninitialized
        tok = self._token
        for k in ks:
            rel = offs[k] - start
            ln = lens[k]
            n = llens[k]
            data = None
            # liblz4 takes int sizes; an LZ4 payload never exceeds 4 + LZ4_compressBound(n).
            if rel + ln <= got and 4 < ln <= n + 20 + n // 255 < 1 << 31 \
                    and crc32_at(0, saddr + rel, ln) == crcs[k] and _prefix(sbuf, rel)[0] == n:
                data = uninitialized(n)
                if decompress(saddr + rel + 4, address(data), ln - 4, n) != n:
                    data = None
            if data is None:
                # Raises for every defect the fast path rejects; a clean fallback (n == 0
                # cannot reach here, ln <= 4 payloads are malformed) still yields bytes.
                data = self._decode_checked(bytes(smv[rel:min(rel + ln, got)]), page, k)
            filled.append(((tok, offs[k]), data))
            res[k - base] = data

    def _read(self, sidx: int, mv: memoryview, offset: int) -> None:
        """Fill ``mv`` with stream bytes [offset, offset + len(mv))."""
        st = self._streams[sidx]
        end = offset + len(mv)
        pos = offset
        page_starts = st.page_starts
        while pos < end:
            page = self._page(sidx, bisect_right(page_starts, pos) - 1)
            starts = page.starts
            i = page.find(pos)
            j = bisect_left(starts, end, i, page.n)
            if j - i <= 2:
                self._copy_records(page, i, j, mv, offset, end)
            else:
                # Edge records may be partly consumed: they go through the cache. Records
                # in between are consumed whole and take the bulk path.
                self._copy_records(page, i, i + 1, mv, offset, end)
                self._copy_bulk(page, i + 1, j - 1, mv, offset, end)
                self._copy_records(page, j - 1, j, mv, offset, end)
            pos = starts[j] if starts[j] < end else end

    def _copy_records(self, page: Page, i: int, j: int, mv: memoryview, base: int,
                      end: int) -> None:
        """Copy the parts of records i..j-1 inside [base, end) to mv (via the cache)."""
        starts = page.starts
        blocks = self._contents(page, i, j)
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
        """Copy records i..j-1, all wholly inside the request, to mv.

        Per-block Python overhead is the budget for 1-8 KiB blocks, so small stored blocks
        that no other record of the page shares skip the cache entirely: adjacent payloads
        are read with one pread, CRC-checked, decoded and copied straight into ``mv``.
        Large, shared, zero and parent records go through ``_copy_records``.
        """
        offs, lens, llens = page.offs, page.lens, page.llens
        reused = page.reused
        cget = self._shared.blocks.get
        tok = self._token
        run: list[int] = []
        run_stop = -1
        k = i
        while k < j:
            off = offs[k]
            n = llens[k]
            if (0 < n < TRANSIENT_MAX and lens[k] and off != PARENT_REF
                    and off not in reused and cget((tok, off)) is None):
                if run and (off != run_stop or run_stop - offs[run[0]] > MAX_COALESCE):
                    self._flush_run(page, run, mv, base)
                    run = []
                run.append(k)
                run_stop = off + lens[k]
            else:
                if run:
                    self._flush_run(page, run, mv, base)
                    run = []
                if n:
                    self._copy_records(page, k, k + 1, mv, base, end)
            k += 1
        if run:
            self._flush_run(page, run, mv, base)

    def _flush_run(self, page: Page, run: list[int], mv: memoryview, base: int) -> None:
        offs, lens, llens, crcs, starts = page.offs, page.lens, page.llens, page.crcs, \
            page.starts
        start = offs[run[0]]
        last = run[-1]
        buf = memoryview(os.pread(self._fd, offs[last] + lens[last] - start, start))
        crc32 = zlib.crc32
        decode = self._decode
        lz4 = self.compression == "lz4"
        rel = 0
        for k in run:
            ln = lens[k]
            n = llens[k]
            payload = buf[rel:rel + ln]
            if len(payload) != ln or crc32(payload) != crcs[k]:
                self._decode_checked(payload, page, k)     # raises the precise BlockError
            data = None
            if lz4 and ln > 4 and _prefix(buf, rel)[0] == n:
                # Inlined LZ4 fast path; anything unusual falls back to the checked decoder.
                try:
                    data = _lz4_decompress(buf[rel + 4:rel + ln], uncompressed_size=n)
                except Exception:  # noqa: BLE001 - re-decoded below for the message
                    data = None
                if data is not None and len(data) != n:
                    data = None
            if data is None:
                try:
                    data = decode(payload, n)
                except ValueError as e:
                    raise BlockError(f"{self._where(page, k)}: {e}") from None
            if self._hash:
                self._check_hash(page, k, data)
            rel += ln
            o = starts[k] - base
            mv[o:o + n] = data

    def _prefetch(self, sidx: int, offset: int, length: int) -> None:
        """Warm the block cache for a range (readahead worker); errors are left for the
        real request to report."""
        st = self._streams[sidx]
        end = min(offset + length, st.size)
        pos = offset
        while pos < end:
            page = self._page(sidx, bisect_right(st.page_starts, pos) - 1)
            i = page.find(pos)
            j = bisect_left(page.starts, end, i, page.n)
            self._contents(page, i, j)
            pos = page.starts[j]

