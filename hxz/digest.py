"""BLAKE3 of block contents (docs/hxz-format.md §5.2, §7.1): the hash every record carries.

The ``blake3`` package is imported on first use, so archives that never need a hash (no zero
record, ``verify="crc"``) open without it; a missing package then fails the one operation that
needs it with a one-line error instead of letting a record go unchecked.
"""

from __future__ import annotations

import functools
from typing import Any

from .errors import BlockError

_ZEROS = bytes(1 << 20)


class MissingBlake3(BlockError):
    """The ``blake3`` package is not importable by this interpreter (never means zeros)."""


@functools.cache
def _hasher() -> Any:
    try:
        import blake3
    except ImportError:
        raise MissingBlake3("checking BLAKE3 block hashes needs the blake3 package "
                            "(pip install blake3) for this Python") from None
    return blake3.blake3


def require() -> None:
    """Raise MissingBlake3 now rather than on the first block."""
    _hasher()


def blake3(data: Any) -> bytes:
    """BLAKE3-256 of a bytes-like object."""
    return _hasher()(data).digest()


@functools.lru_cache(maxsize=256)
def zeros_hash(n: int) -> bytes:
    """BLAKE3-256 of ``n`` zero bytes (the hash a zero record may carry)."""
    h = _hasher()()
    while n > 0:
        step = min(n, len(_ZEROS))
        h.update(_ZEROS[:step] if step < len(_ZEROS) else _ZEROS)
        n -= step
    return h.digest()

