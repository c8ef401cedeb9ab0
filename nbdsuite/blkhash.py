"""The block-based image checksum of ovirt-imageio, so results compare across tools.

The image is cut into fixed ``block_size`` blocks (the last one may be shorter); the
checksum is ``H(H(block 1) + H(block 2) + ...)``.  With blake2b and blake2s the digest
size is 32 bytes, for the block digests and the final one alike.  A block known to be
zeros (a hole, a zero extent, or data that reads as zeros) is hashed from a precomputed
digest of zeros, never read or hashed byte by byte: the result is the same, only faster.

Used by ``http-disk-server``'s ``GET /checksum`` and by ``nbd-checksum`` over NBD, so a
server's disk, an ``nbdcopy`` of it and a snapshot's stream can be compared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

DEFAULT_ALGORITHM = "blake2b"
DEFAULT_BLOCK_SIZE = 4 << 20
DIGEST_SIZE = 32                    # for the blake2 family, which takes a size
MIN_BLOCK_SIZE = DEFAULT_BLOCK_SIZE // 4
MAX_BLOCK_SIZE = DEFAULT_BLOCK_SIZE * 4
# Every hashlib algorithm with a fixed-size digest (the shake family needs a length).
ALGORITHMS = frozenset(a for a in hashlib.algorithms_available if not a.startswith("shake"))


def check_request(algorithm: str, block_size: int) -> None:
    """ValueError with a one-line reason when the pair is not one this tool computes."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (see /checksum/algorithms)")
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise ValueError(f"block_size {block_size} is outside {MIN_BLOCK_SIZE}-"
                         f"{MAX_BLOCK_SIZE}")
    if block_size % 4096:
        raise ValueError(f"block_size {block_size} is not a multiple of 4096")


class BlockHash:
    """Feed it every block in order: ``update(data)`` or ``zero(length)``."""

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE,
                 algorithm: str = DEFAULT_ALGORITHM) -> None:
        new = partial(hashlib.new, algorithm)
        if algorithm.startswith("blake2"):
            new = partial(new, digest_size=DIGEST_SIZE)
        self._new: Callable[..., Any] = new
        self._outer = new()
        self._block_size = block_size
        self._zero_digest = new(bytes(block_size)).digest()

    def update(self, block: Any) -> None:
        self._outer.update(self._new(block).digest())

    def zero(self, length: int) -> None:
        digest = self._zero_digest if length == self._block_size else \
            self._new(bytes(length)).digest()
        self._outer.update(digest)

    def hexdigest(self) -> str:
        return self._outer.hexdigest()


@dataclass
class Block:
    start: int
    length: int
    zero: bool


def blocks(extents: Iterable[tuple[int, int, bool]], block_size: int) -> Iterator[Block]:
    """Cut (start, length, zero) extents, in order and contiguous, into block_size blocks.

    A block is zero only when every extent it covers is; a block made of several extents
    with any data in it is a data block (then read, and still recognised as zeros if it
    reads so)."""
    pending: Block | None = None
    for start, length, zero in extents:
        if pending is not None:
            take = min(block_size - pending.length, length)
            pending.length += take
            pending.zero = pending.zero and zero
            start += take
            length -= take
            if pending.length < block_size:
                continue
            yield pending
            pending = None
        while length >= block_size:
            yield Block(start, block_size, zero)
            start += block_size
            length -= block_size
        if length:
            pending = Block(start, length, zero)
    if pending is not None:
        yield pending


def checksum(size: int, extents: Iterable[tuple[int, int, bool]],
             readinto: Callable[[memoryview, int], None],
             algorithm: str = DEFAULT_ALGORITHM,
             block_size: int = DEFAULT_BLOCK_SIZE) -> dict:
    """The checksum of a ``size``-byte image, as ovirt-imageio's JSON reply.

    ``extents`` must cover [0, size); ``readinto(view, offset)`` fills ``view``."""
    check_request(algorithm, block_size)
    h = BlockHash(block_size, algorithm)
    buf = bytearray(block_size)
    zeros = bytes(block_size)
    covered = 0
    for b in blocks(extents, block_size):
        if b.start != covered:
            raise ValueError(f"extents are not contiguous at offset {covered}")
        if b.zero:
            h.zero(b.length)
        else:
            view = memoryview(buf)[:b.length]
            readinto(view, b.start)
            if view == memoryview(zeros)[:b.length]:
                h.zero(b.length)
            else:
                h.update(view)
        covered += b.length
    if covered != size:
        raise ValueError(f"extents cover {covered} of {size} bytes")
    return {"algorithm": algorithm, "block_size": block_size, "checksum": h.hexdigest()}
