"""Optional native fast paths through ctypes: CRC-32 (libdeflate) and LZ4 decoding into a
caller-owned buffer (liblz4).

Why: measured on the 1 GiB LZ4 benchmark image, python-lz4 decompresses into a private
buffer and then copies it into a new bytes object, and zlib's CRC-32 runs at ~2.5 GB/s;
calling liblz4 straight into the destination and libdeflate's carry-less-multiply CRC-32
cut the codec + checksum time per GiB by about 2.5x.  ctypes releases the GIL for the
duration of each call, like the Python bindings do.  Both libraries are optional: when
either is missing the reader keeps using zlib.crc32 and python-lz4 (``AVAILABLE`` False).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any


def _load(*names: str) -> Any:
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


_lz4 = _load("liblz4.so.1", ctypes.util.find_library("lz4") or "liblz4.so")
_deflate = _load("libdeflate.so.0", ctypes.util.find_library("deflate") or "libdeflate.so")

AVAILABLE = bool(_lz4 is not None and _deflate is not None
                 and hasattr(_lz4, "LZ4_decompress_safe")
                 and hasattr(_deflate, "libdeflate_crc32"))

if AVAILABLE:
    # int LZ4_decompress_safe(const char *src, char *dst, int srcSize, int dstCapacity):
    # never writes past dstCapacity and returns a negative value on malformed input.
    lz4_decompress = _lz4.LZ4_decompress_safe
    lz4_decompress.restype = ctypes.c_int
    lz4_decompress.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    # uint32_t libdeflate_crc32(uint32_t crc, const void *buf, size_t len): the IEEE
    # CRC-32 that zlib.crc32 computes (docs/hxz-format.md §5.2).
    crc32_at = _deflate.libdeflate_crc32
    crc32_at.restype = ctypes.c_uint32
    crc32_at.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]

_char = ctypes.c_char

# PyByteArray_FromStringAndSize(NULL, n) returns a bytearray whose contents are left
# uninitialised: bytearray(n) would zero-fill memory that the decoder overwrites anyway
# (the memset showed up as ~9% of the plugin's CPU in perf).  Called through pythonapi,
# which holds the GIL as the C API requires.
_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize
_new_bytearray.restype = ctypes.py_object
_new_bytearray.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]


def uninitialized(n: int) -> bytearray:
    """A new bytearray of ``n`` bytes with unspecified contents; the caller must overwrite
    all of them before anyone reads it."""
    return _new_bytearray(None, n)


def address(buf: Any) -> int:
    """Address of the first byte of a writable, non-empty, contiguous buffer.

    The caller must keep ``buf`` alive (and unresized) while it uses the address.  A
    one-byte view is used on purpose: ``(c_char * n)`` would create (and cache forever)
    a new ctypes type for every distinct length.
    """
    return ctypes.addressof(_char.from_buffer(buf))
