"""The block store: payload source, codec and block cache, and the one check-and-decode.

A record's block is produced by :meth:`BlockStore.check_and_decode`: payload length, CRC-32,
decompression to exactly ``logical_len`` bytes and, with ``verify="hash"``, the BLAKE3 of the
result against the record (docs/hxz-format.md §6, §14.2).  The fast paths below do the same
work with fewer Python objects and hand anything unusual to it, so every error message comes
from one place:

* records a request consumes partly (its edges), or that are large, shared through dedup,
  zero or parent references, go through the block cache (:meth:`blocks`), with batched
  single-flight claims and adjacent payloads read together;
* spans of 32 KiB or more are read into a pooled buffer and CRC-checked and decoded by
  libdeflate and liblz4 or libzstd without intermediate Python objects (hxz/native.py);
* small stored blocks that a request consumes whole skip the cache (hxz/copier.py): adjacent
  payloads are read at once and decoded straight into the caller's buffer.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from . import digest, native
from .cache import LRUCache
from .codecs import Decoder
from .errors import BlockError
from .index import PARENT_REF, Page
from .source import PayloadSource

_ZERO_MV = memoryview(bytes(1 << 20))
# Adjacent payloads missing from the cache are fetched with one read up to this span.
MAX_COALESCE = 8 << 20
# Reads spanning less than this keep the python-lz4/zlib path: for a few KiB the fixed
# cost of the ctypes calls outweighs the copy they save (measured with 4 KiB QD1 reads
# of 1-8 KiB blocks).
NATIVE_MIN = 32 << 10

ParentContent = Callable[[Page, int], Any]


def zeros(n: int) -> Any:
    return _ZERO_MV[:n] if n <= len(_ZERO_MV) else bytes(n)


# Payload read buffers reused across calls (a fresh allocation per read costs page faults
# and a munmap per read).  A small shared free list rather than one buffer per thread:
# nbdkit runs up to 16 request threads per connection, and memory must stay bounded.
_free_scratch: list[tuple[bytearray, memoryview, int]] = []
SCRATCH_POOL = 4
SCRATCH_KEEP = 4 << 20


def take_scratch(n: int) -> tuple[bytearray, memoryview, int]:
    """A read buffer of at least ``n`` (> 0) bytes as (buffer, memoryview, address);
    hand it back with ``give_scratch``."""
    try:
        cur = _free_scratch.pop()           # list.pop/append are atomic under the GIL
    except IndexError:
        cur = None
    if cur is None or len(cur[0]) < n:
        b = bytearray(max(n, 256 << 10))
        cur = (b, memoryview(b), native.address(b))
    return cur


def give_scratch(cur: tuple[bytearray, memoryview, int]) -> None:
    if len(cur[0]) <= SCRATCH_KEEP and len(_free_scratch) < SCRATCH_POOL:
        _free_scratch.append(cur)


def _no_parent(page: Page, k: int) -> Any:
    raise BlockError(f"{page.stream.label} stream block at logical offset {page.starts[k]} "
                     f"is a parent reference but the archive names no parent")


class BlockStore:
    """Produces the blocks of one archive's records (cache keys are per store)."""

    def __init__(self, source: PayloadSource, compression: str, decode: Decoder,
                 cache: LRUCache, token: int, *, verify_hash: bool = False) -> None:
        self.source = source
        self.compression = compression
        self.cache = cache
        self.verify_hash = verify_hash
        self.parent_content: ParentContent = _no_parent
        self._decode = decode
        self._token = token
        self._verified: dict[int, bytes] = {}
        self._readinto = getattr(source, "readinto", None)
        # The decoder's raw-address entry point, ``decode_at(src, src_len, dst, n) -> bool``
        # (hxz/codecs.py), when the native libraries are there; None otherwise.  Public:
        # the copier decodes small and large blocks straight into read buffers with it.
        self.decode_at = getattr(decode, "decode_at", None) if native.AVAILABLE else None

    def cached(self, offset: int) -> Any:
        """The cached block of the payload at ``offset``, or None."""
        return self.cache.get((self._token, offset))

    def known(self, offset: int) -> bool:
        """True when the block of the payload at ``offset`` is cached or being decoded."""
        return self.cache.known((self._token, offset))

    def where(self, page: Page, k: int) -> str:
        return (f"{self.source.name}: {page.stream.label} stream block at logical "
                f"offset {page.starts[k]} (payload offset {page.offs[k]}, {page.lens[k]} "
                f"bytes)")

    # ------------------------------------------------------- the one check-and-decode
    def check_and_decode(self, page: Page, k: int, payload: Any) -> Any:
        """Record k's block from its payload, every check applied (raises BlockError)."""
        if len(payload) != page.lens[k]:
            raise BlockError(f"{self.where(page, k)}: payload truncated ({len(payload)} "
                             f"bytes readable)")
        crc = zlib.crc32(payload)
        if crc != page.crcs[k]:
            raise BlockError(f"{self.where(page, k)}: CRC mismatch (stored "
                             f"{page.crcs[k]:#010x}, computed {crc:#010x})")
        try:
            data = self._decode(payload, page.llens[k])
        except ValueError as e:
            raise BlockError(f"{self.where(page, k)}: {e}") from None
        if self.verify_hash:
            self.check_hash(page, k, data)
        return data

    def check_hash(self, page: Page, k: int, data: Any, *, cached: bool = True) -> None:
        """verify=hash: the BLAKE3 of record k's block must be the record's.  A block that
        goes to the cache is remembered as vouched for by this hash, so later uses by
        records with the same hash (dedup) skip the work."""
        want = page.hash(k)
        got = digest.blake3(data)
        if got != want:
            raise BlockError(f"{self.where(page, k)}: BLAKE3 mismatch (record "
                             f"{want.hex()[:16]}..., block {got.hex()[:16]}...)")
        if cached:
            if len(self._verified) > 1 << 20:
                self._verified.clear()
            self._verified[page.offs[k]] = want

    def payload(self, page: Page, k: int) -> bytes:
        """Record k's stored bytes; a short read names the record."""
        try:
            return self.source.pread(page.lens[k], page.offs[k])
        except BlockError as e:
            raise BlockError(f"{self.where(page, k)}: {e}") from None

    def read_span(self, page: Page, ks: Sequence[int], start: int, stop: int) -> memoryview:
        """The payloads of records ``ks``, adjacent in [start, stop), read at once; when
        that fails, record by record so that the error names the record at fault."""
        try:
            return memoryview(self.source.pread(stop - start, start))
        except BlockError:
            return memoryview(b"".join(self.payload(page, k) for k in ks))

    def read_into(self, page: Page, ks: Sequence[int], smv: memoryview, start: int,
                  span: int) -> int:
        """Read the adjacent payloads of records ``ks`` (``span`` bytes from ``start``)
        into ``smv``; returns how many bytes arrived (fewer at the end of a short file)."""
        if self._readinto is not None:
            return self._readinto(smv[:span], start)
        smv[:span] = self.read_span(page, ks, start, start + span)
        return span

    # ------------------------------------------------------------- through the cache
    def blocks(self, page: Page, i: int, j: int) -> list[Any]:
        """Blocks (bytes-like, exactly logical_len long) of records i..j-1 of a page."""
        offs, lens, llens = page.offs, page.lens, page.llens
        cget = self.cache.get
        tok = self._token
        res: list[Any] = [None] * (j - i)
        missing: list[int] = []
        for k in range(i, j):
            off = offs[k]
            n = llens[k]
            if n == 0:
                res[k - i] = b""
            elif off == PARENT_REF:
                res[k - i] = self.parent_content(page, k)
            elif lens[k] == 0:
                res[k - i] = zeros(n)
            else:
                v = cget((tok, off))
                if v is None:
                    missing.append(k)
                else:
                    res[k - i] = v
        if missing:
            self._load(page, missing, res, i)
        if self.verify_hash:
            # Every use of a block is checked against its own record: a cached payload
            # that a damaged record points at is not vouched for by the record that
            # loaded it.
            verified = self._verified
            for k in range(i, j):
                if lens[k] and llens[k] and offs[k] != PARENT_REF \
                        and verified.get(offs[k]) != page.hash(k):
                    self.check_hash(page, k, res[k - i])
        return res

    def _load(self, page: Page, ks: list[int], res: list[Any], base: int) -> None:
        """Produce stored records ``ks`` (cache misses) into ``res[k - base]``.

        Keys are claimed as a batch so that a concurrent reader (the readahead worker)
        waits for this thread instead of decompressing the same block again; payloads
        adjacent in the file are read at once.
        """
        offs, lens = page.offs, page.lens
        cache = self.cache
        tok = self._token
        first_of: dict[int, int] = {}
        uniq: list[int] = []
        dups: list[int] = []
        for k in ks:
            if offs[k] in first_of:
                dups.append(k)
            else:
                first_of[offs[k]] = k
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
        filled: list[tuple[tuple[int, int], Any]] = []
        try:
            for run in _adjacent_runs(page, owned):
                start, stop = offs[run[0]], offs[run[-1]] + lens[run[-1]]
                if self.decode_at is not None and stop - start >= NATIVE_MIN:
                    got = self._decode_native(page, run, start, stop)
                else:
                    buf = self.read_span(page, run, start, stop)
                    got = [self.check_and_decode(page, k, buf[offs[k] - start:
                                                             offs[k] - start + lens[k]])
                           for k in run]
                for k, data in zip(run, got, strict=True):
                    filled.append(((tok, offs[k]), data))
                    res[k - base] = data
        finally:
            abandoned = []
            if len(filled) != len(owned):
                done = {key for key, _ in filled}
                abandoned = [(tok, offs[k]) for k in owned if (tok, offs[k]) not in done]
            cache.settle_many(filled, abandoned, batch_ev)
        for k, ev in waits:
            ev.wait()
            res[k - base] = cache.get_or_load(
                (tok, offs[k]), lambda k=k: self.check_and_decode(page, k, self.payload(page, k)))
        for k in dups:
            res[k - base] = res[first_of[offs[k]] - base]

    def _decode_native(self, page: Page, ks: list[int], start: int, stop: int) -> list[Any]:
        """Records ``ks``, whose payloads are adjacent in [start, stop): one read into a
        pooled buffer, CRC-32 and decoding straight from it into new block buffers.
        Anything unusual (short read, CRC or prefix mismatch, decoder error) goes to
        ``check_and_decode`` on the same bytes, which raises the precise BlockError."""
        span = stop - start
        scratch = take_scratch(span)
        try:
            got = self.read_into(page, ks, scratch[1], start, span)
            return [self._native_one(page, k, start, got, scratch) for k in ks]
        finally:
            give_scratch(scratch)

    def _native_one(self, page: Page, k: int, start: int, got: int,
                    scratch: tuple[bytearray, memoryview, int]) -> Any:
        sbuf, smv, saddr = scratch
        rel = page.offs[k] - start
        ln = page.lens[k]
        n = page.llens[k]
        if rel + ln <= got and native.crc32_at(0, saddr + rel, ln) == page.crcs[k]:
            data = native.uninitialized(n)
            if self.decode_at(saddr + rel, ln, native.address(data), n):
                return data
        # Raises for every defect the fast path rejects; a clean fallback still yields
        # the block.
        return self.check_and_decode(page, k, bytes(smv[rel:min(rel + ln, got)]))


def _adjacent_runs(page: Page, ks: list[int]) -> list[list[int]]:
    """Split records ``ks`` (in order) into runs whose payloads follow each other in the
    file, each spanning at most MAX_COALESCE bytes."""
    offs, lens = page.offs, page.lens
    runs: list[list[int]] = []
    stop = -1
    for k in ks:
        if runs and offs[k] == stop and offs[k] + lens[k] - offs[runs[-1][0]] <= MAX_COALESCE:
            runs[-1].append(k)
        else:
            runs.append([k])
        stop = offs[k] + lens[k]
    return runs
