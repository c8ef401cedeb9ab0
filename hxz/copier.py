"""Copying a stream range into a read buffer, record by record.

Edge records a request consumes partly go through the block cache; records it consumes whole
take the bulk path.  Stored blocks that no other record of the page shares skip the cache:
runs of them whose payloads follow each other in the file are read at once and decoded
straight into the caller's buffer (a large one only when it is neither cached nor being
decoded by another thread, such as the readahead worker).  Per-block Python work is the
budget for 1-8 KiB blocks, so the classification is done once per page
(``Page.bulk_flags``) and a request finds its runs with one regular-expression scan instead
of a test per record.  For LZ4 each check of a run (CRC-32 of every payload, every size
prefix, every decode to exactly its length) is then one ``map`` executed by C code over the
whole run, calling liblz4 and libdeflate through bindings that keep the GIL and skip
argtypes conversions: measured, the ctypes call overhead and the Python bytecode per block
were most of the CPU for 1-8 KiB blocks.  Every block still comes out of the block store's
checks: a run in which anything is unusual is redone block by block, and anything unusual
there goes to ``BlockStore.check_and_decode``, whose error names the block.
"""

from __future__ import annotations

import ctypes
import re
import sys
import zlib
from array import array
from itertools import accumulate, repeat
from operator import add, itemgetter, sub
from typing import Any

from . import native
from .blockstore import BlockStore, give_scratch, take_scratch
from .codecs import _lz4_decompress, _prefix
from .index import PARENT_REF, Page

# Blocks below this size that a bulk read consumes whole and that no other record of the
# page shares are decoded without going through the cache: re-decoding one costs less
# than the cache bookkeeping.
TRANSIENT_MAX = 64 << 10
# A run of adjacent payloads read at once stops growing past this span.
MAX_RUN = 8 << 20

# Page.bulk_flags values, one byte per record.
_CACHED = 0         # through the block cache (large, shared, zero, parent, empty)
_RUN_START = 1      # small private stored block starting a run
_RUN_NEXT = 2       # small private stored block whose payload follows the previous one's
_LARGE = 3          # large private stored block: decoded in place unless cached already
# A run of small blocks, a stretch of large private ones, or a stretch of cached ones.
_SEGMENTS = re.compile(rb"[\x01\x02]\x02*|\x03+|\x00+")


def bulk_flags(page: Page) -> bytes:
    """Classify a page's records for bulk reads (computed once per page load)."""
    flags = page.bulk_flags
    if flags is None:
        offs, lens, llens, reused = page.offs, page.lens, page.llens, page.reused
        out = bytearray(page.n)
        prev_end = -1
        for k in range(page.n):
            off = offs[k]
            if not lens[k] or off == PARENT_REF or off in reused or not llens[k]:
                prev_end = -1
            elif llens[k] < TRANSIENT_MAX:
                out[k] = _RUN_NEXT if off == prev_end else _RUN_START
                prev_end = off + lens[k]
            else:
                # liblz4 takes int sizes: a block of 2 GiB or more stays on the cached path.
                out[k] = _LARGE if llens[k] < 1 << 31 and lens[k] < 1 << 31 else _CACHED
                prev_end = -1
        flags = page.bulk_flags = bytes(out)
    return flags


_char = ctypes.c_char
_byref = ctypes.byref
_LITTLE = sys.byteorder == "little"


class _SizeArgs(dict):
    """size_t call arguments by value, made once: payload lengths repeat, and a new
    c_size_t per block costs a fifth of the CRC step.  Never mutated, so threads share
    them."""

    LIMIT = 1 << 16

    def __missing__(self, n: int) -> ctypes.c_size_t:
        if len(self) >= self.LIMIT:
            self.clear()
        v = self[n] = ctypes.c_size_t(n)
        return v


_size_arg = _SizeArgs().__getitem__


def _lz4_run(scratch: tuple[bytearray, memoryview, int], lens: array, llens: array,
             crcs: array, starts: array, dobj: Any, base: int) -> bool:
    """Check and decode a run of small LZ4 blocks whose payloads lie back to back at the
    start of ``scratch``, each into ``dobj`` (the read buffer, logical ``base`` at 0).

    True when every payload has its CRC-32, a size prefix equal to its logical length and
    decodes to exactly that many bytes.  Each check is one ``map`` over the run, run by C
    code (PyDLL calls without argtypes: hxz/native.py).  False means something is unusual
    somewhere; the caller then redoes the run block by block to name it (blocks of the run
    may by then hold partly decoded bytes, which that pass overwrites or fails on).
    """
    if min(lens) <= 4 or max(lens) >= 1 << 31:
        return False        # an LZ4 payload outgrows its prefix; liblz4 takes int sizes
    sobj = _char.from_buffer(scratch[0])
    rels = list(accumulate(lens, initial=0))
    rels.pop()
    if array("I", map(native.crc32_held, repeat(0), map(_byref, repeat(sobj), rels),
                      map(_size_arg, lens))) != crcs:
        return False
    # Size prefixes (u32 LE) against the logical lengths, compared one byte plane at a
    # time: byte p of every prefix is gathered by one itemgetter call on the buffer seen
    # from p (an itemgetter of one index returns a scalar, hence the special case).
    want = llens
    if not _LITTLE:
        want = array("I", llens)
        want.byteswap()
    want_b = want.tobytes()
    smv = scratch[1]
    if len(rels) == 1:
        if smv[:4] != want_b:
            return False
    else:
        get = itemgetter(*rels)
        for p in range(4):
            if bytes(get(smv[p:])) != want_b[p::4]:
                return False
    body = list(map(add, rels, repeat(4)))
    return list(map(native.lz4_decompress_held, map(_byref, repeat(sobj), body),
                    map(_byref, repeat(dobj), map(sub, starts, repeat(base))),
                    map(sub, lens, repeat(4)), llens)) == llens.tolist()


class Copier:
    """Fills read buffers from one archive's block store."""

    def __init__(self, store: BlockStore) -> None:
        self._store = store
        self._decode_at = store.decode_at      # None without the native libraries
        self._lz4 = store.compression == "lz4"

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
        """Records i..j-1, all consumed whole: runs of small private blocks are decoded
        into ``mv`` directly, the rest goes through the cache."""
        flags = bulk_flags(page)
        dobj: Any = None         # mv as a ctypes object, made once per request
        daddr = 0
        for m in _SEGMENTS.finditer(flags, i, j):
            a, b = m.span()
            if flags[a] == _CACHED or (flags[a] == _LARGE and self._decode_at is None):
                self._copy_cached(page, a, b, mv, base, end)
                continue
            if self._decode_at is None:
                self._run_python(page, a, b, mv, base)
                continue
            if dobj is None:
                dobj = _char.from_buffer(mv)
                daddr = ctypes.addressof(dobj)
            if flags[a] == _LARGE:
                self._copy_large(page, a, b, mv, daddr, base, end)
            else:
                self._run_native(page, a, b, mv, daddr, base, dobj if self._lz4 else None)

    def _copy_large(self, page: Page, i: int, j: int, mv: memoryview, daddr: int, base: int,
                    end: int) -> None:
        """Large private blocks i..j-1: the ones already cached or being decoded (by the
        readahead worker, say) are copied from the cache; the others are decoded straight
        into ``mv``, adjacent payloads with one read, and never enter the cache (no other
        record of the page needs them, and a sequential reader does not come back)."""
        offs, lens = page.offs, page.lens
        known = self._store.known
        a = i
        while a < j:
            if known(offs[a]):
                self._copy_cached(page, a, a + 1, mv, base, end)
                a += 1
                continue
            b = a + 1
            while b < j and offs[b] == offs[b - 1] + lens[b - 1] and not known(offs[b]):
                b += 1
            self._run_native(page, a, b, mv, daddr, base)
            a = b

    def _spans(self, page: Page, a: int, b: int) -> list[tuple[int, int]]:
        """Split run a..b-1 so that no read spans more than MAX_RUN bytes."""
        offs = page.offs
        if offs[b - 1] + page.lens[b - 1] - offs[a] <= MAX_RUN:
            return [(a, b)]
        out = []
        while a < b:
            e = a + 1
            while e < b and offs[e] + page.lens[e] - offs[a] <= MAX_RUN:
                e += 1
            out.append((a, e))
            a = e
        return out

    def _run_native(self, page: Page, i: int, j: int, mv: memoryview, daddr: int,
                    base: int, dobj: Any = None) -> None:
        """One read of the run's payloads into a pooled buffer, then CRC-32 and decoding
        from that buffer straight into ``mv``.  With ``dobj`` (``mv`` as a ctypes object;
        small LZ4 blocks only) each check is first one C-level pass over the whole run
        (``_lz4_run``), so a 1-8 KiB block costs no Python bytecode of its own; otherwise,
        or when anything in the run is unusual, block by block (``_decode_each``), whose
        failure names the block."""
        store = self._store
        offs, lens, llens, crcs, starts = page.offs, page.lens, page.llens, page.crcs, \
            page.starts
        for a, b in self._spans(page, i, j):
            start = offs[a]
            span = offs[b - 1] + lens[b - 1] - start
            scratch = take_scratch(span)
            try:
                got = store.read_into(page, range(a, b), scratch[1], start, span)
                if not (dobj is not None and got == span
                        and _lz4_run(scratch, lens[a:b], llens[a:b], crcs[a:b], starts[a:b],
                                     dobj, base)):
                    self._decode_each(page, a, b, mv, daddr, base, scratch, got)
                elif store.verify_hash:
                    for k in range(a, b):
                        o = starts[k] - base
                        store.check_hash(page, k, mv[o:o + llens[k]], cached=False)
            finally:
                give_scratch(scratch)

    def _decode_each(self, page: Page, a: int, b: int, mv: memoryview, daddr: int,
                     base: int, scratch: tuple[bytearray, memoryview, int], got: int) -> None:
        """Records a..b-1, whose adjacent payloads are in ``scratch`` (``got`` bytes of
        them arrived): per record one CRC-32 and one decode call straight into ``mv``;
        anything unusual goes to ``check_and_decode``, which raises naming the block."""
        store = self._store
        crc32_at = native.crc32_at
        decode_at = self._decode_at
        lz4 = self._lz4
        lz4_at = native.lz4_decompress
        prefix = _prefix
        verify_hash = store.verify_hash
        smv, saddr = scratch[1], scratch[2]
        rel = 0
        for k, ln, n, crc, s in zip(range(a, b), page.lens[a:b], page.llens[a:b],
                                    page.crcs[a:b], page.starts[a:b], strict=True):
            o = s - base
            # LZ4 is decoded inline: the size prefix and the liblz4 call without
            # the decoder's wrapper (one Python call less per small block).
            if not (rel + ln <= got and crc32_at(0, saddr + rel, ln) == crc
                    and (4 < ln and prefix(smv, rel)[0] == n
                         and lz4_at(saddr + rel + 4, daddr + o, ln - 4, n) == n
                         if lz4 else decode_at(saddr + rel, ln, daddr + o, n))):
                # Raises for every defect the fast path rejects.
                mv[o:o + n] = store.check_and_decode(
                    page, k, bytes(smv[rel:min(rel + ln, got)]))
            elif verify_hash:
                store.check_hash(page, k, mv[o:o + n], cached=False)
            rel += ln

    def _run_python(self, page: Page, i: int, j: int, mv: memoryview, base: int) -> None:
        """The same without the native libraries: python-lz4 or the codec's decoder."""
        store = self._store
        crc32 = zlib.crc32
        lz4 = store.compression == "lz4"
        verify_hash = store.verify_hash
        for a, b in self._spans(page, i, j):
            start = page.offs[a]
            buf = store.read_span(page, range(a, b), start,
                                  page.offs[b - 1] + page.lens[b - 1])
            rel = 0
            for k, ln, n, crc, s in zip(range(a, b), page.lens[a:b], page.llens[a:b],
                                        page.crcs[a:b], page.starts[a:b], strict=True):
                payload = buf[rel:rel + ln]
                data: Any = None
                if lz4 and ln > 4 and crc32(payload) == crc and _prefix(buf, rel)[0] == n:
                    try:
                        data = _lz4_decompress(buf[rel + 4:rel + ln], uncompressed_size=n)
                    except Exception:  # noqa: BLE001 - re-decoded below for the message
                        data = None
                    if data is not None and len(data) != n:
                        data = None
                    if data is not None and verify_hash:
                        store.check_hash(page, k, data, cached=False)
                if data is None:
                    data = store.check_and_decode(page, k, payload)
                rel += ln
                o = s - base
                mv[o:o + n] = data
