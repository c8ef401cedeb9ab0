"""Deterministic generators of the inputs that the hexz tests pack.

Each generator is seeded, so a failing test reproduces with the same bytes. The shapes are
chosen for how hexz 0.8.2 chunks them (hxz-format.md §16): random and text data get
64 KiB-1 MiB blocks, "redundant" data (a small set of snippets repeated, with zero runs)
gets 1-8 KiB blocks, which is what makes an archive need more than one index page.
"""

from __future__ import annotations

import random

_ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def text(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    words = [
        bytes(rnd.choice(_ALPHABET) for _ in range(rnd.randint(2, 10))) for _ in range(400)
    ]
    out = bytearray()
    line = 0
    while len(out) < n:
        line += 1
        out += b"%06d " % line + b" ".join(rnd.choice(words) for _ in range(11)) + b"\n"
    return bytes(out[:n])


def redundant(n: int, seed: int) -> bytes:
    """Few distinct snippets repeated in random order with short zero runs: tiny CDC chunks."""
    rnd = random.Random(seed)
    snippets = [rnd.randbytes(rnd.randint(500, 4000)) for _ in range(40)]
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(snippets)
        if rnd.random() < 0.2:
            out += bytes(rnd.randint(100, 5000))
    return bytes(out[:n])


def mixed_with_zero_runs(seed: int) -> bytes:
    """Random, text and long zero runs (>= 1 MiB each) in one image, about 9 MiB."""
    rnd = random.Random(seed)
    parts = [
        random_bytes(700_001, seed + 1),
        bytes(1_500_000),
        text(900_000, seed + 2),
        bytes(2_200_000),
        random_bytes(300_000, seed + 3),
        bytes(1 << 20),
        text(123_457, seed + 4),
        # non-zero but extremely compressible: must not be mistaken for zeros
        b"\x01" * 400_000,
        b"hexz" * 100_000,
        bytes(300_000) + b"\xff" + bytes(300_000),
    ]
    # a few isolated non-zero bytes inside a zero run: must never be reported as zero
    zeros = bytearray(1_000_000)
    for _ in range(3):
        zeros[rnd.randrange(len(zeros))] = rnd.randrange(1, 256)
    parts.insert(2, bytes(zeros))
    return b"".join(parts)


def shifted(base: bytes, seed: int, inserts: list[tuple[int, int]]) -> bytes:
    """Copy of base with fresh random bytes inserted at (position in base, length) points,
    so that every later block of the base moves to a different logical offset."""
    rnd = random.Random(seed)
    out = bytearray()
    last = 0
    for at, length in sorted(inserts):
        out += base[last:at] + rnd.randbytes(length)
        last = at
    out += base[last:]
    return bytes(out)


def overwritten(base: bytes, seed: int, spans: list[tuple[int, int]]) -> bytes:
    """Copy of base with some spans replaced in place (same size, blocks do not move)."""
    rnd = random.Random(seed)
    out = bytearray(base)
    for at, length in spans:
        out[at : at + length] = rnd.randbytes(length)
    return bytes(out)
