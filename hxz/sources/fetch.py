"""Ranged reads over a slow, parallel transport: coalescing, bounded spans, readahead.

A remote source supplies one primitive, ``fetch(offset, length) -> bytes`` (one ranged
request, with its own retries and failover).  ``RangeFetcher`` turns the reader's
``pread``/``preadv`` calls into such requests:

* ``preadv``: ranges that touch are merged into one request, up to ``max_span`` bytes;
  separate spans run in parallel (at most ``workers`` at once).
* ``pread`` of more than ``chunk`` bytes is cut into chunks fetched in parallel.
* A sequential reader (reads that each start where the previous one ended, 64 KiB or
  more in all) gets a readahead train: chunks ahead of it are fetched in the background,
  never more than twice what the run has read so far (a short run costs little when it
  stops), in whole chunks: the look-ahead is topped up once a chunk's worth is missing,
  not after every read (each request costs an HTTP exchange).  Up to four readers are
  followed at once (nbdcopy copies several regions in parallel); their trains share
  ``workers`` x ``chunk`` bytes of look-ahead, with two chunks each at least.  Reads
  within a chunk of a reader's position move its train along; chunks more than one chunk
  behind are dropped, so the memory held is bounded by
  (max(workers, 2 x trains) + 2 x trains) x chunk,
  plus up to ``workers`` dropped chunks' buffers kept for the next chunks (a fresh
  buffer costs a zero fill), and a byte of a sequential copy is fetched once.  Reads
  elsewhere (index pages) are served from a train when their bytes are already on the
  way, else straight from the transport, and never move a train.

Threads are created on first use and after a fork never reused (nbdkit daemonises by
forking after the archive is opened).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import BlockError

Fetch = Callable[[int, int], bytes]

# Requests of 2 MiB: measured against nginx on loopback, 1-4 MiB requests all run at the
# same speed, and 2 MiB keeps a lone reader's train (4 requests ahead) within 8-12 MiB.
DEFAULT_CHUNK = 2 << 20
# The largest single request a preadv merge produces, as the local reader's coalescing.
DEFAULT_MAX_SPAN = 8 << 20
# A train starts once a sequential run has read this much, and fetches at most twice what
# the run has read so far ahead of it (up to workers x chunk): two adjacent small reads
# (zero-block checks, index records) must not pull megabytes.
MIN_RUN = 64 << 10
MIN_CHUNK = 64 << 10
# Sequential readers followed at once (nbdcopy reads 2-4 regions in parallel).
MAX_TRAINS = 4


class _Chunk:
    __slots__ = ("start", "end", "future", "buf", "users", "dropped")

    def __init__(self, start: int, end: int, future: Future,
                 buf: bytearray | None = None) -> None:
        self.start = start
        self.end = end
        self.future = future
        self.buf = buf              # the recyclable buffer the bytes land in, if any
        self.users = 0              # reads copying out of it right now
        self.dropped = False        # no longer in a train: recycle once users is 0


class _Train:
    """Chunks fetched ahead of one sequential reader."""

    __slots__ = ("chunks", "frontier", "pos", "run")

    def __init__(self, pos: int, run: int) -> None:
        self.chunks: list[_Chunk] = []
        self.frontier = pos          # end of the last chunk scheduled
        self.pos = pos               # end of the reader's last read
        self.run = run               # bytes the reader has read in sequence

    def covering(self, offset: int, end: int) -> list[_Chunk]:
        return [c for c in self.chunks if c.start < end and c.end > offset]

    def cancel(self) -> list[_Chunk]:
        """Cancel the chunks not yet fetched; returns the chunks dropped."""
        chunks, self.chunks = self.chunks, []
        for c in chunks:
            c.future.cancel()
        return chunks


def coalesce(ranges: Sequence[tuple[int, int]], max_span: int) -> list[tuple[int, int, list[int]]]:
    """Group (offset, length) ranges that touch, in the order given, into spans.

    Returns (span offset, span length, indexes of the ranges it covers).  A range that
    does not start where the previous one ended, or would make the span longer than
    ``max_span``, starts a new span.
    """
    spans: list[tuple[int, int, list[int]]] = []
    for i, (off, n) in enumerate(ranges):
        if spans:
            s_off, s_len, idx = spans[-1]
            if off == s_off + s_len and s_len + n <= max_span:
                spans[-1] = (s_off, s_len + n, idx + [i])
                continue
        spans.append((off, n, [i]))
    return spans


def _as_bytes(data: bytes | bytearray) -> bytes:
    # Transports may fill a bytearray; callers get immutable, hashable bytes.
    return data if type(data) is bytes else bytes(data)


def _pick(chunks: list[_Chunk], offset: int, end: int) -> list[_Chunk] | None:
    """Contiguous chunks covering [offset, end), chosen among possibly overlapping ones
    (each step takes the chunk reaching furthest); None when there is a gap."""
    chunks = sorted(chunks, key=lambda c: c.start)
    out: list[_Chunk] = []
    pos = offset
    while pos < end:
        best = None
        for c in chunks:
            if c.start <= pos < c.end and (best is None or c.end > best.end):
                best = c
        if best is None:
            return None
        out.append(best)
        pos = best.end
    return out or None


class RangeFetcher:
    """Turns pread/preadv into bounded, parallel calls of ``fetch``; thread-safe."""

    def __init__(self, fetch: Fetch, size: int, name: str, *, workers: int = 4,
                 chunk: int = DEFAULT_CHUNK, max_span: int = DEFAULT_MAX_SPAN,
                 fetch_into: Callable[[int, memoryview], None] | None = None) -> None:
        self._fetch = fetch
        self._fetch_into = fetch_into
        self.size = size
        self.name = name
        self.workers = max(1, workers)
        self.chunk = chunk
        self.max_span = max_span
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = -1
        # One train per sequential reader (nbdcopy reads several regions at once), most
        # recently used first; and the sequential runs of reads not (yet) in a train,
        # keyed by where the next read of the run would start.
        self._trains: list[_Train] = []
        self._runs: dict[int, int] = {}
        # Buffers of chunks no read needs any more, for the next chunks: a new bytearray
        # is zero-filled and its pages faulted in (measured: a third of the receiving
        # threads' CPU on loopback), a recycled one is not.  At most ``workers`` kept.
        self._free: list[bytearray] = []
        self._max_free = self.workers
        self.requests = 0           # fetch calls made (for tests and benchmarks)
        self.fetched = 0            # bytes asked of the transport

    # ------------------------------------------------------------------ plumbing
    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_pid != os.getpid():
            # A pool inherited through fork has no threads: start a new one.
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="hxz-fetch")
            self._pool_pid = os.getpid()
        return self._pool

    def _counted(self, offset: int, length: int) -> bytes:
        with self._lock:
            self.requests += 1
            self.fetched += length
        data = self._fetch(offset, length)
        if len(data) != length:     # the transport checks this; a bug must not pass
            raise BlockError(f"{self.name}: got {len(data)} of {length} bytes at offset "
                             f"{offset}")
        return data

    def _counted_into(self, offset: int, mv: memoryview) -> None:
        with self._lock:
            self.requests += 1
            self.fetched += len(mv)
        self._fetch_into(offset, mv)

    def _fill(self, offset: int, buf: bytearray, length: int) -> memoryview:
        """A train chunk: ``length`` bytes at ``offset`` fetched into ``buf``."""
        mv = memoryview(buf)[:length]
        self._counted_into(offset, mv)
        return mv

    # Chunk buffers: taken when a chunk is scheduled, given back when the chunk has left
    # its train and no read is copying out of it (both under the lock).
    def _release(self, c: _Chunk) -> None:
        """(Lock held.) Recycle ``c``'s buffer if nothing can read it any more."""
        if c.buf is None or c.users or not c.dropped:
            return
        f = c.future
        if not f.done() or f.cancelled() or f.exception() is not None:
            return      # still being written (or failed): left to the collector
        if len(self._free) < self._max_free:
            self._free.append(c.buf)
        c.buf = None

    def _drop(self, chunks: list[_Chunk]) -> None:
        """(Lock held.) Chunks that left their train."""
        for c in chunks:
            c.dropped = True
            self._release(c)

    def _check(self, length: int, offset: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise BlockError(f"{self.name}: read of {length} bytes at offset {offset} lies "
                             f"outside the {self.size}-byte object (truncated archive?)")

    def close(self) -> None:
        with self._lock:
            trains, self._trains = self._trains, []
            for t in trains:
                self._drop(t.cancel())
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------- reading
    def pread(self, length: int, offset: int) -> bytes:
        self._check(length, offset)
        if length == 0:
            return b""
        parts = self._plan(offset, offset + length)
        if parts is None:
            return self._direct(offset, length)
        return self._assemble(parts, offset, offset + length)

    def readinto(self, buf: Any, offset: int) -> int:
        """Fill ``buf`` with the bytes at ``offset`` (fewer at the end of the object);
        returns the count.  Saves the copies of pread: direct fetches land in ``buf``,
        train chunks are copied into it once."""
        mv = memoryview(buf).cast("B")
        n = max(0, min(len(mv), self.size - offset))
        self._check(n, offset)
        if n == 0:
            return 0
        mv = mv[:n]
        end = offset + n
        parts = self._plan(offset, end)
        if parts is not None:
            self._assemble(parts, offset, end, into=mv)
        elif self._fetch_into is None:
            mv[:] = self._direct(offset, n)
        else:
            pieces = [(a, min(self.chunk, end - a)) for a in range(offset, end, self.chunk)]
            if len(pieces) == 1:
                self._counted_into(offset, mv)
            else:
                pool = self._executor()
                futures = [pool.submit(self._counted_into, a, mv[a - offset:a - offset + k])
                           for a, k in pieces]
                try:
                    for f in futures:
                        f.result()
                finally:
                    for f in futures:
                        f.cancel()
        return n

    def _plan(self, offset: int, end: int) -> list[_Chunk] | None:
        """Chunks of a train that cover [offset, end), or None for a direct fetch (which
        may start a train for what follows)."""
        length = end - offset
        with self._lock:
            if self._pool is not None and self._pool_pid != os.getpid():
                # Forked (nbdkit daemonising) while chunks were on their way: the
                # threads that would complete them do not exist in this process.
                self._pool, self._trains, self._runs = None, [], {}
            parts, followed = self._from_trains(offset, end)
            for c in parts or ():
                c.users += 1        # its buffer is not recycled until _assemble is done
            if parts is None and not followed:
                run = self._runs.pop(offset, 0) + length
                if run >= MIN_RUN and run > length and end < self.size:
                    # A sequential run: start fetching ahead of this reader.
                    t = _Train(end, run)
                    self._trains.insert(0, t)
                    while len(self._trains) > MAX_TRAINS:
                        self._drop(self._trains.pop().cancel())
                    self._extend(t, end, end)
                else:
                    self._runs[end] = run
                    while len(self._runs) > 4 * MAX_TRAINS:
                        del self._runs[next(iter(self._runs))]
        return parts

    def _from_trains(self, offset: int, end: int) -> tuple[list[_Chunk] | None, bool]:
        """(Lock held.) Chunks of the trains covering [offset, end) (or None), and whether
        the read continues a train's reader."""
        followed = False
        for i, t in enumerate(self._trains):
            if t.pos - self.chunk <= offset <= t.pos + self.chunk:
                # Its reader carries on: move the train along with it.
                if i:
                    self._trains.insert(0, self._trains.pop(i))
                self._extend(t, offset, end)
                followed = True
                break
        # Bytes on their way in any train (the reader's own, or another thread's, or the
        # next region's when two readers meet) serve the read; it moves no other train.
        chunks = [c for t in self._trains for c in t.covering(offset, end)]
        return _pick(chunks, offset, end), followed

    def _extend(self, t: _Train, offset: int, end: int) -> None:
        """(Lock held.) Advance train ``t``'s reader to ``end``, schedule chunks ahead of
        it, and drop chunks more than one chunk behind ``offset``."""
        if end > t.pos:
            t.run += end - max(offset, t.pos)
            t.pos = end
        # The trains share workers x chunk of look-ahead, but each gets two chunks at
        # least, and at most twice what its run has read.
        ahead = min(max(2 * self.chunk, self.workers * self.chunk // len(self._trains)),
                    2 * t.run)
        # Several requests in flight for one reader; with several readers, in flight
        # across them, in larger requests.  At least two per train: refills come in
        # whole chunks (below), so with a one-chunk look-ahead the reader would drain
        # it and then wait for a whole refill (measured over a 50 MB/s link: 125
        # against 161 MB/s; on loopback, nbdcopy's four readers in whole 2 MiB requests
        # cost 8% less nbdkit CPU than in twice as many of 1 MiB).
        chunk = min(self.chunk, max(MIN_CHUNK,
                                    ahead // max(2, self.workers // len(self._trains))))
        hard = self.size
        for o in self._trains:
            # Never fetch into bytes another reader's train has already fetched: where
            # one region's reader reaches the next region, that train serves it.
            if o is not t and o.chunks and t.pos <= o.chunks[0].start:
                hard = min(hard, o.chunks[0].start)
        target = min(hard, t.pos + ahead)
        pool = self._executor()
        while t.frontier < target:
            a = t.frontier
            b = min(a + chunk, target)
            if b - a < chunk and b < hard:
                # Refill in whole chunks: topping the look-ahead up after every read
                # would send one small request per read (measured: 7000 requests per
                # GiB of the small-block image, their per-request CPU as much as the
                # decompression's).
                break
            if self._fetch_into is not None:
                buf = self._free.pop() if self._free else bytearray(self.chunk)
                t.chunks.append(_Chunk(a, b, pool.submit(self._fill, a, buf, b - a), buf))
            else:
                t.chunks.append(_Chunk(a, b, pool.submit(self._counted, a, b - a)))
            t.frontier = b
        # One chunk behind the reader stays: a second thread slightly behind (the
        # reader's own readahead) still finds its bytes.
        while t.chunks and t.chunks[0].end <= offset - self.chunk:
            self._drop([t.chunks.pop(0)])

    def _assemble(self, parts: list[_Chunk], offset: int, end: int,
                  into: memoryview | None = None) -> bytes:
        """Copy [offset, end) out of ``parts`` (counted as users by _plan) into ``into``,
        or return it; then let their buffers go."""
        try:
            out = []
            pos = offset
            for c in parts:
                try:
                    data = c.future.result()
                except BaseException:
                    with self._lock:
                        # A failed chunk must be fetched again by the next read, not
                        # replayed as the same error: drop its train.
                        for t in self._trains:
                            if c in t.chunks:
                                self._drop(t.cancel())
                                self._trains.remove(t)
                                break
                    raise
                # Chunks of two trains may overlap: continue from where the last one ended.
                hi = min(end, c.end)
                piece = memoryview(data)[pos - c.start:hi - c.start]
                if into is not None:
                    into[pos - offset:hi - offset] = piece
                else:
                    out.append(piece)
                pos = hi
            if into is not None:
                return b""
            return out[0].tobytes() if len(out) == 1 else b"".join(out)
        finally:
            out = piece = data = None       # no view of a buffer outlives the copy
            with self._lock:
                for c in parts:
                    c.users -= 1
                    self._release(c)

    def _direct(self, offset: int, length: int) -> bytes:
        if length <= self.chunk:
            return _as_bytes(self._counted(offset, length))
        pieces = [(a, min(self.chunk, offset + length - a))
                  for a in range(offset, offset + length, self.chunk)]
        return b"".join(self._parallel(pieces))

    def _parallel(self, pieces: list[tuple[int, int]]) -> list[bytes]:
        if len(pieces) == 1:
            return [self._counted(*pieces[0])]
        pool = self._executor()
        futures = [pool.submit(self._counted, a, n) for a, n in pieces]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()

    def preadv(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        for off, n in ranges:
            self._check(n, off)
        spans = coalesce(ranges, self.max_span)
        if len(spans) == 1:
            datas = [self.pread(spans[0][1], spans[0][0])]
        else:
            nonempty = [(a, n) for a, n, _ in spans if n]
            got = iter(self._parallel(nonempty) if nonempty else [])
            datas = [next(got) if n else b"" for _, n, _ in spans]
        out: list[bytes] = [b""] * len(ranges)
        for (s_off, _s_len, idx), data in zip(spans, datas, strict=True):
            mv = memoryview(data)
            for i in idx:
                off, n = ranges[i]
                out[i] = _as_bytes(data) if len(idx) == 1 else \
                    mv[off - s_off:off - s_off + n].tobytes()
        return out
