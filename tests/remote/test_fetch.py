"""RangeFetcher: coalescing, bounded spans, readahead, against a counting transport."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from hxz.errors import BlockError
from hxz.sources.fetch import RangeFetcher, coalesce


class Transport:
    """A byte string behind a fetch() that records each call and can fail on demand."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.fail_at: int | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def __call__(self, offset: int, length: int) -> bytes:
        with self.lock:
            self.calls.append((offset, length))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.fail_at is not None and offset <= self.fail_at < offset + length:
                raise BlockError(f"x: bytes {offset}-{offset + length - 1}: refused")
            threading.Event().wait(0.002)       # a transport takes time
            return self.data[offset:offset + length]
        finally:
            with self.lock:
                self.in_flight -= 1


def test_coalesce_merges_touching_ranges_up_to_the_span():
    assert coalesce([(0, 10), (10, 5), (20, 1), (21, 4)], 100) == \
        [(0, 15, [0, 1]), (20, 5, [2, 3])]
    assert coalesce([(0, 60), (60, 60)], 100) == [(0, 60, [0]), (60, 60, [1])]


def test_preadv_one_request_per_adjacent_run():
    data = random.Random(1).randbytes(1 << 20)
    t = Transport(data)
    f = RangeFetcher(t, len(data), "x", workers=4, max_span=64 << 10)
    ranges = [(100, 1000), (1100, 50), (1150, 7), (5000, 10), (9000, 0)]
    assert f.preadv(ranges) == [data[o:o + n] for o, n in ranges]
    assert sorted(t.calls) == [(100, 1057), (5000, 10)]
    f.close()


def test_sequential_reads_fetch_each_byte_once_with_requests_in_flight():
    data = random.Random(2).randbytes(40 << 20)
    t = Transport(data)
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=1 << 20)
    rng = random.Random(3)
    pos, out = 0, []
    while pos < len(data):
        n = min(rng.randrange(1, 3 << 20), len(data) - pos)
        out.append(f.pread(n, pos))
        pos += n
    f.close()
    assert b"".join(out) == data
    assert sum(n for _, n in t.calls) <= 1.01 * len(data)
    assert t.max_in_flight >= 2
    assert max(n for _, n in t.calls) <= 1 << 20


def test_a_sequential_reader_of_small_reads_gets_whole_chunk_requests():
    """Each request costs the transport a round trip and the CPU of an HTTP exchange: a
    reader advancing 64 KiB at a time must not make the train fetch 64 KiB at a time."""
    data = random.Random(15).randbytes(32 << 20)
    t = Transport(data)
    chunk = 1 << 20
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=chunk)
    step = 64 << 10
    for pos in range(0, len(data), step):
        assert f.pread(step, pos) == data[pos:pos + step]
    f.close()
    assert sum(n for _, n in t.calls) <= 1.01 * len(data)
    # Smaller ones while the train ramps up (it fetches at most twice what the run has
    # read: about 20 steps from 64 KiB to 1 MiB), then whole chunks: 512 reads, under
    # 60 requests.
    sizes = [n for _, n in t.calls]
    assert len(sizes) <= len(data) // chunk + 24, sizes
    assert sizes.count(chunk) >= len(data) // chunk - 12, sizes


def test_a_failed_chunk_fails_the_read_and_is_fetched_again():
    data = random.Random(4).randbytes(8 << 20)
    t = Transport(data)
    f = RangeFetcher(t, len(data), "x", workers=2, chunk=1 << 20)
    assert f.pread(1000, 0) == data[:1000]
    assert f.pread(1000, 1000) == data[1000:2000]      # the train starts
    t.fail_at = 3 << 20
    with pytest.raises(BlockError):
        for o in range(2000, len(data), 100_000):
            f.pread(min(100_000, len(data) - o), o)
    t.fail_at = None
    assert f.pread(200_000, 3 << 20) == data[3 << 20:(3 << 20) + 200_000]
    f.close()


def test_reads_outside_the_object_are_errors():
    f = RangeFetcher(Transport(b"abc"), 3, "obj", workers=1)
    with pytest.raises(BlockError, match="obj: read of 2 bytes at offset 2"):
        f.pread(2, 2)
    assert f.pread(0, 3) == b""


def _mixed_readers(f: RangeFetcher, data: bytes, runs: list[tuple[int, int, bool]], *,
                   scattered: int, max_scattered: int, timeout: float) -> list[tuple]:
    """Sequential readers (start, seed, through readinto?) and one scattered reader, each in
    its own thread; returns the reads whose bytes differed.  A hang fails the test."""
    bad: list[tuple] = []

    def sequential(start: int, seed: int, use_readinto: bool) -> None:
        rng = random.Random(seed)
        buf = bytearray(1 << 20)
        pos = start
        while pos < len(data):
            n = min(rng.randrange(1, 1 << 20), len(data) - pos)
            if use_readinto:
                got = f.readinto(memoryview(buf)[:n], pos)
                ok = got == n and buf[:n] == data[pos:pos + n]
            else:
                ok = f.pread(n, pos) == data[pos:pos + n]
            if not ok:
                bad.append(("seq", pos, n))
            pos += n

    def scattered_reads(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(scattered):
            o = rng.randrange(len(data))
            n = min(rng.randrange(1, max_scattered), len(data) - o)
            if f.pread(n, o) != data[o:o + n]:
                bad.append(("rand", o, n))

    threads = [threading.Thread(target=sequential, args=r) for r in runs]
    threads.append(threading.Thread(target=scattered_reads, args=(3,)))
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads), "a reader hung"
    return bad


def test_threads_mixing_sequential_and_random_reads_get_exact_bytes():
    data = random.Random(6).randbytes(24 << 20)
    t = Transport(data)
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=512 << 10)
    bad = _mixed_readers(f, data, [(0, 1, False), (100_000, 2, False)], scattered=300,
                         max_scattered=200_000, timeout=60)
    f.close()
    assert not bad, bad[:5]


def test_a_fork_with_chunks_in_flight_does_not_hang_the_child():
    """nbdkit forks after the archive is opened: the child must fetch on its own."""
    data = random.Random(7).randbytes(8 << 20)
    f = RangeFetcher(Transport(data), len(data), "x", workers=2, chunk=1 << 20)
    f.pread(1000, 0)
    f.pread(1000, 1000)                 # a train with chunks on their way
    pid = os.fork()
    if pid == 0:
        try:
            ok = f.pread(100_000, 2000) == data[2000:102_000]
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child hung on chunks of its parent")
        threading.Event().wait(0.02)
    assert os.waitstatus_to_exitcode(status) == 0
    f.close()


def test_every_read_returns_bytes_even_from_a_bytearray_transport():
    data = random.Random(8).randbytes(3 << 20)
    f = RangeFetcher(lambda o, n: bytearray(data[o:o + n]), len(data), "x", workers=2,
                     chunk=1 << 20)
    got = [f.pread(10, 5), f.pread(2 << 20, 0), *f.preadv([(0, 3), (3, 4), (100, 2)]),
           *f.preadv([(7, 1)])]
    assert all(type(g) is bytes for g in got)
    f.close()


def test_two_small_adjacent_reads_do_not_start_a_train():
    """Zero-block checks and index records read a few bytes side by side: nothing ahead."""
    data = random.Random(9).randbytes(16 << 20)
    t = Transport(data)
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=2 << 20)
    assert f.pread(204, 709_178) == data[709_178:709_382]
    assert f.pread(48, 709_382) == data[709_382:709_430]
    assert f.pread(60, 709_430) == data[709_430:709_490]
    f.close()
    assert sum(n for _, n in t.calls) == 204 + 48 + 60


def test_interleaved_sequential_readers_each_get_a_train():
    """nbdcopy copies two or more regions at once, one request from each in turn."""
    data = random.Random(10).randbytes(32 << 20)
    t = Transport(data)
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=1 << 20)
    starts = [0, 8 << 20, 16 << 20, 24 << 20]
    pos = list(starts)
    out = {s: [] for s in starts}
    while any(p < s + (8 << 20) for p, s in zip(pos, starts, strict=True)):
        for i, s in enumerate(starts):
            if pos[i] < s + (8 << 20):
                out[s].append(f.pread(256 << 10, pos[i]))
                pos[i] += 256 << 10
    f.close()
    assert b"".join(b"".join(out[s]) for s in starts) == data
    # A reader that stops leaves at most its train's look-ahead unread (two chunks, with
    # four trains sharing workers x chunk).
    assert sum(n for _, n in t.calls) <= len(data) + len(starts) * 2 * (1 << 20)
    assert len(t.calls) < len(data) // (256 << 10)     # fewer, larger requests


def test_interleaved_readers_never_drain_their_look_ahead():
    """Four readers share a look-ahead of workers x chunk: refilling in whole chunks must
    still leave bytes on the way after every read, or over a slow link each reader waits
    for a whole refill in turn."""
    data = random.Random(16).randbytes(32 << 20)
    t = Transport(data)
    chunk = 1 << 20
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=chunk)
    starts = [0, 8 << 20, 16 << 20, 24 << 20]
    pos = list(starts)
    step = 128 << 10
    least = None
    while any(p < s + (8 << 20) for p, s in zip(pos, starts, strict=True)):
        for i, s in enumerate(starts):
            if pos[i] < s + (8 << 20):
                assert f.pread(step, pos[i]) == data[pos[i]:pos[i] + step]
                pos[i] += step
                train = next((tr for tr in f._trains if tr.pos == pos[i]), None)
                # Once all four trains run and the reader is past its ramp-up, away
                # from the region's end (where the next train serves it).
                if train is not None and len(f._trains) == 4 and \
                        2 << 20 <= pos[i] - s <= 6 << 20:
                    ahead = train.frontier - train.pos
                    least = ahead if least is None else min(least, ahead)
    f.close()
    assert least is not None, "no reader was followed by a train"
    # Half a chunk at least stays on the way after every read (a train that drains its
    # look-ahead before refilling falls to one read's worth).
    assert least >= chunk // 2, least


def test_pick_covers_with_overlapping_chunks_and_reports_gaps():
    from concurrent.futures import Future

    from hxz.sources.fetch import _Chunk, _pick

    def ch(a, b):
        return _Chunk(a, b, Future())
    a, b, c = ch(0, 100), ch(50, 200), ch(200, 300)
    assert _pick([c, b, a], 10, 250) == [a, b, c]
    assert _pick([a, c], 10, 250) is None
    assert _pick([b], 60, 70) == [b]


def test_readinto_fills_the_callers_buffer_sequential_and_scattered():
    data = random.Random(11).randbytes(20 << 20)
    t = Transport(data)

    def into(offset: int, mv: memoryview) -> None:
        mv[:] = t(offset, len(mv))
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=1 << 20, fetch_into=into)
    buf = bytearray(3 << 20)
    pos, rng = 0, random.Random(12)
    while pos < len(data):
        n = rng.randrange(1, 3 << 20)
        got = f.readinto(memoryview(buf)[:n], pos)
        assert got == min(n, len(data) - pos)
        assert buf[:got] == data[pos:pos + got], pos
        pos += got
    assert sum(n for _, n in t.calls) <= 1.05 * len(data)     # the sequential pass
    for _ in range(50):
        o, n = rng.randrange(len(data)), rng.randrange(1, 5 << 20)
        got = f.readinto(memoryview(buf)[:min(n, len(buf))], o)
        assert buf[:got] == data[o:o + got]
    f.close()


def test_chunk_buffers_are_recycled_and_never_reused_while_read():
    """With fetch_into, train chunks land in buffers given back once their chunk left the
    train and no read copies out of it.  Three threads (two sequential readers, one of
    them through readinto, and scattered reads) must still get exact bytes, and a long
    sequential pass must use a bounded number of buffers, not one per chunk."""
    data = random.Random(13).randbytes(48 << 20)
    t = Transport(data)
    buffers: set[int] = set()

    def into(offset: int, mv: memoryview) -> None:
        with t.lock:
            buffers.add(id(mv.obj))
        got = t(offset, len(mv))
        # Written in two steps with a pause: a reader copying out of a buffer that was
        # handed to another chunk too early would see the other chunk's bytes.
        half = len(mv) // 2
        mv[:half] = got[:half]
        threading.Event().wait(0.001)
        mv[half:] = got[half:]
    f = RangeFetcher(t, len(data), "x", workers=4, chunk=256 << 10, fetch_into=into)
    bad = _mixed_readers(f, data, [(0, 1, True), (20 << 20, 2, False)], scattered=200,
                         max_scattered=300_000, timeout=120)
    assert not bad, bad[:5]
    chunks = len(t.calls)
    f.close()
    # Scattered reads fill their own buffers (one each); chunks share a few.
    assert chunks > 150 and len(buffers) < 200 + 40, (chunks, len(buffers))

    # One sequential reader alone: its ~190 chunks share a handful of buffers.
    buffers.clear()
    t.calls.clear()
    g = RangeFetcher(t, len(data), "x", workers=4, chunk=256 << 10, fetch_into=into)
    buf = bytearray(256 << 10)
    for pos in range(0, len(data), len(buf)):
        assert g.readinto(buf, pos) == len(buf) and buf == data[pos:pos + len(buf)]
    g.close()
    assert len(t.calls) > 150 and 0 < len(buffers) <= 16, (len(t.calls), len(buffers))


def test_a_chunk_being_read_keeps_its_buffer_when_its_train_moves_on():
    """The invariant behind recycling, step by step: a read holds chunks (from _plan to
    the end of _assemble); a train that meanwhile drops them (its reader went far ahead)
    must not hand their buffers to new chunks until that read is done."""
    data = random.Random(14).randbytes(8 << 20)
    t = Transport(data)

    def into(offset: int, mv: memoryview) -> None:
        mv[:] = t(offset, len(mv))
    chunk = 64 << 10
    f = RangeFetcher(t, len(data), "x", workers=2, chunk=chunk, fetch_into=into)
    buf = bytearray(chunk)
    pos = 0
    for pos in range(0, 4 * chunk, chunk):          # a sequential run: a train starts
        f.readinto(buf, pos)
    pos += chunk
    parts = f._plan(pos, pos + 1000)
    assert parts, "the read is not served from the train"
    held = [c.buf for c in parts]
    assert all(b is not None for b in held)
    for p in range(pos + 1000, pos + 1000 + 40 * chunk, chunk):    # the train moves on
        assert f.readinto(buf, p) == chunk and buf == data[p:p + chunk]
    assert all(c.dropped for c in parts)
    live = [c.buf for tr in f._trains for c in tr.chunks]
    for b in held:
        assert all(b is not x for x in live + f._free), "a held buffer was recycled"
    f._free.clear()                                     # room for them
    assert f._assemble(parts, pos, pos + 1000) == data[pos:pos + 1000]
    assert all(c.buf is None for c in parts)            # given back once the read ended
    assert any(b is x for b in held for x in f._free)
    f.close()
