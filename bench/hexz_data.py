"""Test images for bench_hexz.py, generated at run time (nothing large is committed).

* ``large``: random and text data in alternating 1-4 MiB segments (hexz chunks it at
  64 KiB-1 MiB).  Text is drawn from one generated word pool, each segment re-lettered
  with its own permutation so segments do not deduplicate against each other.
* ``small``: redundant data: zero runs and repetitive numbered text lines (hexz chunks it
  at 1-8/16 KiB).
* ``sparse``: a large all-zero image holding a few MiB of random data.
"""

from __future__ import annotations

import os
import random

LETTERS = b"abcdefghijklmnopqrstuvwxyz"
MiB = 1 << 20


class TextSource:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words = [bytes(self.rng.choices(LETTERS, k=self.rng.randint(2, 10)))
                 for _ in range(8000)]
        words += [w + b"\n" for w in words[:800]]
        self.pool = b" ".join(self.rng.choices(words, k=1_500_000))

    def segment(self, n: int) -> bytes:
        perm = bytearray(LETTERS)
        self.rng.shuffle(perm)
        table = bytes.maketrans(LETTERS, bytes(perm))
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(self.pool) // 2)
            o = self.rng.randrange(0, len(self.pool) - take)
            out += self.pool[o:o + take].translate(table)
        return bytes(out)


def make_large(path: str, size: int, seed: int = 1) -> None:
    """Random + text, alternating segments of 1-4 MiB."""
    text = TextSource(seed)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            n = min(left, rng.randint(1, 4) * MiB)
            f.write(os.urandom(n) if i % 2 == 0 else text.segment(n))
            left -= n
            i += 1


def make_small(path: str, size: int, seed: int = 2) -> None:
    """Redundant data: zero runs and repetitive numbered text lines."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left, line = size, 0
        while left:
            if rng.random() < 0.3:
                chunk = bytes(min(left, rng.randint(64, 1024) * 1024))
            else:
                lines = []
                n = 0
                target = min(left, rng.randint(256, 2048) * 1024)
                while n < target:
                    s = b"record %08d status=%s value=%d\n" % (
                        line, rng.choice((b"ok", b"warn", b"fail")), rng.randint(0, 99))
                    line += 1
                    lines.append(s)
                    n += len(s)
                chunk = b"".join(lines)[:target]
            f.write(chunk)
            left -= len(chunk)


def make_sparse(path: str, size: int, data: int = 8 * MiB, pieces: int = 8) -> None:
    """A ``size``-byte image of zeros holding ``data`` bytes of random data in pieces."""
    with open(path, "wb") as f:
        f.truncate(size)
        step = size // pieces
        for k in range(pieces):
            f.seek(k * step + step // 3)
            f.write(os.urandom(data // pieces))
