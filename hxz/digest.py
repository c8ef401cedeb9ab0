"""BLAKE3 of block contents: the end-to-end check behind ``verify="hash"``.

Every record carries the BLAKE3-256 of its uncompressed content (docs/hxz-format.md,
"Block record").  The CRC-32 only covers the stored bytes, so a record retargeted at
another valid payload, or a stored record damaged into a zero record, passes it; the
hash catches both.  ``blake3`` (PyPI) is imported on first use, so archives that need
no hash work without it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

VERIFY_MODES = ("crc", "hash")
_ZERO_CHUNK = bytes(1 << 20)


def _blake3() -> Any:
    try:
        import blake3
    except ImportError:
        raise RuntimeError("checking BLAKE3 hashes needs the 'blake3' module (pip install "
                           "blake3) in this Python") from None
    return blake3.blake3


def block_hash(data: Any) -> bytes:
    """BLAKE3-256 of ``data`` (any bytes-like object)."""
    return _blake3()(data).digest()


@lru_cache(maxsize=256)
def zero_hash(n: int) -> bytes:
    """BLAKE3-256 of ``n`` zero bytes, hashed in 1 MiB steps (no n-byte allocation)."""
    h = _blake3()()
    while n > 0:
        step = min(n, len(_ZERO_CHUNK))
        h.update(memoryview(_ZERO_CHUNK)[:step])
        n -= step
    return h.digest()


def check_verify_mode(verify: str) -> str:
    """``verify`` if it is a known mode this Python can carry out; ValueError otherwise."""
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify={verify}: expected crc or hash")
    if verify == "hash":
        try:
            _blake3()
        except RuntimeError as e:
            raise ValueError(f"verify=hash: {e}") from None
    return verify
