"""Checks shared by the in-process (hxz) and the NBD tests: where to read, and what extents
must say. Everything expected is computed from the packed inputs plus the independent
index decoder (spec), never from the reader under test."""

from __future__ import annotations

import errno
import os
import random

from tests.support.archives import spec


def edge_reads(layout: spec.Layout, size: int, seed: int, max_edges: int = 60,
               n_random: int = 40, max_len: int = 1 << 20) -> list[tuple[int, int]]:
    """(offset, length) reads aimed at block and page edges, the stream end, and random spots.

    Each edge gets reads that end on it, start on it, and straddle it by a few bytes, plus one
    longer read spanning several blocks. Lengths stay within `max_len`.
    """
    rnd = random.Random(seed)
    if size == 0:
        return []
    blocks, pages = spec.edges(layout)
    chosen = list(pages)
    if len(blocks) > max_edges:
        chosen += rnd.sample(blocks, max_edges)
    else:
        chosen += blocks
    reads: set[tuple[int, int]] = set()

    def add(off: int, length: int) -> None:
        off = max(0, off)
        length = min(length, size - off, max_len)
        if length > 0:
            reads.add((off, length))

    for e in chosen:
        add(e - 1, 1)
        add(e, 1)
        add(e - 1, 2)
        add(e - 4096, 4096)
        add(e, 4096)
        add(e - 3, 7)
        add(e - rnd.randint(1, 70_000), rnd.randint(70_001, 300_000))
    for p in pages:  # a long read crossing a page edge, many blocks on each side
        add(p - 200_000, 400_000)
    add(0, 1)
    add(size - 1, 1)
    add(max(0, size - 4097), 4097)
    add(0, size)
    for _ in range(n_random):
        off = rnd.randrange(size)
        add(off, rnd.choice([1, 512, 4096, 65536, rnd.randint(1, 400_000)]))
    return sorted(reads)


def zero_records(layout: spec.Layout, data: bytes, min_len: int = 1) -> list[tuple[int, int]]:
    """(start, length) of every record whose content in the *input* is all zeros."""
    out = []
    for r in layout.records(0):
        chunk = data[r.start:r.start + r.logical_len]
        if r.logical_len >= min_len and chunk.count(0) == r.logical_len:
            out.append((r.start, r.logical_len))
    return out


def check_extents(extents: list[tuple[int, int, bool]], data: bytes, offset: int, length: int,
                  must_be_zero: list[tuple[int, int]]) -> None:
    """Extents must tile [offset, offset+length) exactly; a range reported as zero must be zero
    in the input (soundness, never negotiable); every range in must_be_zero must be reported
    as zero (the plugin recognises all-zero blocks)."""
    pos = offset
    for start, ln, _ in extents:
        assert start == pos, f"extent gap/overlap at {pos}: next extent starts at {start}"
        assert ln > 0, f"empty extent at {start}"
        pos += ln
    assert pos == offset + length, f"extents end at {pos}, expected {offset + length}"
    for start, ln, is_zero in extents:
        if is_zero:
            chunk = data[start:start + ln]
            nz = len(chunk) - chunk.count(0)
            assert nz == 0, (f"extent [{start}, {start + ln}) reported zero but the input has "
                             f"{nz} non-zero bytes there")
    zero_set = [(s, s + n) for s, n, z in extents if z]
    for s, n in must_be_zero:
        if s + n <= offset or s >= offset + length:
            continue
        lo, hi = max(s, offset), min(s + n, offset + length)
        covered = sum(max(0, min(hi, b) - max(lo, a)) for a, b in zero_set)
        assert covered == hi - lo, (f"all-zero block [{lo}, {hi}) reported as data "
                                    f"({hi - lo - covered} bytes not marked zero)")


def first_diff(a: bytes, b: bytes) -> int | None:
    """Offset of the first differing byte (None if equal), for readable failure messages."""
    step = 65536
    n = min(len(a), len(b))
    for base in range(0, n, step):
        x, y = a[base:min(base + step, n)], b[base:min(base + step, n)]
        if x != y:
            return base + next(i for i in range(len(x)) if x[i] != y[i])
    return None if len(a) == len(b) else n


def _data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    out = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole remains
                break
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end))
        pos = end
    return out


def sparse_files_equal(a: str | os.PathLike, b: str | os.PathLike) -> int | None:
    """Compare two (sparse) files byte for byte without reading their common holes, which
    are zeros in both. Returns the first differing offset, or None if equal."""
    fa, fb = os.open(a, os.O_RDONLY), os.open(b, os.O_RDONLY)
    try:
        size = os.fstat(fa).st_size
        if os.fstat(fb).st_size != size:
            return 0
        ranges = sorted(_data_ranges(fa, size) + _data_ranges(fb, size))
        step = 8 << 20
        for start, end in ranges:
            for pos in range(start, end, step):
                n = min(step, end - pos)
                x, y = os.pread(fa, n, pos), os.pread(fb, n, pos)
                if x != y:
                    return pos + (first_diff(x, y) or 0)
        return None
    finally:
        os.close(fa)
        os.close(fb)
