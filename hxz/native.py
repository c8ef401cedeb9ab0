"""Optional native fast paths through ctypes: CRC-32 (libdeflate), and LZ4 (liblz4) and Zstd
(libzstd) decoding into a caller-owned buffer.

Why: measured on the 1 GiB LZ4 benchmark image, python-lz4 decompresses into a private
buffer and then copies it into a new bytes object, and zlib's CRC-32 runs at ~2.5 GB/s;
calling liblz4 straight into the destination and libdeflate's carry-less-multiply CRC-32
cut the codec + checksum time per GiB by about 2.5x.  ctypes releases the GIL for the
duration of each call, like the Python bindings do.  Both libraries are optional: when
either is missing the reader keeps using zlib.crc32 and python-lz4 (``AVAILABLE`` False).
libzstd is used the same way when present (``ZSTD_AVAILABLE``): python-zstandard allocates
its output, decodes, then shrinks it; ``ZSTD_decompress_usingDDict`` with a reused context
writes straight into the destination.
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
    # The same two functions bound for blocks of a few KiB, where the call costs more than
    # the work (hxz/copier.py): through PyDLL, which keeps the GIL instead of handing it
    # over, and without argtypes, whose conversions cost ~40% of a call.  Callers pass
    # pointers as ctypes objects (byref), size_t as c_size_t, and Python ints only for C
    # int parameters.
    crc32_held = ctypes.PyDLL(_deflate._name)["libdeflate_crc32"]
    crc32_held.restype = ctypes.c_uint32
    lz4_decompress_held = ctypes.PyDLL(_lz4._name)["LZ4_decompress_safe"]
    lz4_decompress_held.restype = ctypes.c_int

_zstd = _load("libzstd.so.1", ctypes.util.find_library("zstd") or "libzstd.so")
ZSTD_AVAILABLE = bool(_zstd is not None and all(
    hasattr(_zstd, f) for f in ("ZSTD_createDCtx", "ZSTD_freeDCtx", "ZSTD_createDDict",
                                "ZSTD_freeDDict", "ZSTD_decompress_usingDDict",
                                "ZSTD_decompressDCtx")))

if ZSTD_AVAILABLE:
    _vp, _sz = ctypes.c_void_p, ctypes.c_size_t
    for _name, _res, _args in (
            ("ZSTD_createDCtx", _vp, []),
            ("ZSTD_freeDCtx", _sz, [_vp]),
            ("ZSTD_createDDict", _vp, [_vp, _sz]),
            ("ZSTD_freeDDict", _sz, [_vp]),
            # size_t ZSTD_decompressDCtx(dctx, dst, dstCapacity, src, srcSize): the
            # decoded size, or an error code (a value near 2^64) such as dstSize_tooSmall when
            # the frame holds more than dstCapacity bytes; never writes past dstCapacity.
            ("ZSTD_decompressDCtx", _sz, [_vp, _vp, _sz, _vp, _sz]),
            ("ZSTD_decompress_usingDDict", _sz, [_vp, _vp, _sz, _vp, _sz, _vp])):
        _fn = getattr(_zstd, _name)
        _fn.restype, _fn.argtypes = _res, _args

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


class _DCtx:
    """A libzstd decompression context."""

    def __init__(self) -> None:
        self.ptr = _zstd.ZSTD_createDCtx()
        if not self.ptr:
            raise MemoryError("ZSTD_createDCtx failed")

    def __del__(self) -> None:
        _zstd.ZSTD_freeDCtx(self.ptr)


class ZstdNative:
    """Zstd frames (with the archive's dictionary, if any) decoded by libzstd into memory
    the caller owns.

    Contexts come from a small free list, not from thread-local storage: nbdkit's Python
    plugin gives every request a new Python thread state, so a thread-local context would
    be created (and its window allocated) for every request.  A context serves one
    thread at a time; list.pop/append are atomic under the GIL."""

    KEEP = 8

    def __init__(self, dict_bytes: bytes | None) -> None:
        self._ddict = None
        if dict_bytes:
            self._ddict = _zstd.ZSTD_createDDict(bytes(dict_bytes), len(dict_bytes))
            if not self._ddict:
                raise ValueError("libzstd refused the dictionary")
        self._free: list[_DCtx] = []

    def __del__(self) -> None:
        if self._ddict:
            _zstd.ZSTD_freeDDict(self._ddict)

    def decode_at(self, src: int, src_len: int, dst: int, n: int) -> bool:
        """Decode the frame at address ``src`` into ``n`` bytes at ``dst``; False unless
        it decodes cleanly to exactly ``n`` bytes (the caller then reports why)."""
        try:
            ctx = self._free.pop()
        except IndexError:
            ctx = _DCtx()
        if self._ddict:
            got = _zstd.ZSTD_decompress_usingDDict(ctx.ptr, dst, n, src, src_len, self._ddict)
        else:
            got = _zstd.ZSTD_decompressDCtx(ctx.ptr, dst, n, src, src_len)
        if len(self._free) < self.KEEP:
            self._free.append(ctx)
        # Error codes are (size_t)-1 down to about -120: never a length below 2^32, so
        # ``got == n`` alone tells success (one ctypes call less per block).
        return got == n


def lz4_decode_at(src: int, src_len: int, dst: int, n: int) -> bool:
    """An LZ4 payload (u32 size prefix + raw block, docs/hxz-format.md §6) at address
    ``src`` into ``n`` bytes at ``dst``; False unless it decodes cleanly to exactly ``n``."""
    # liblz4 takes int sizes; an LZ4 payload never exceeds 4 + LZ4_compressBound(n).
    if not 4 < src_len <= n + 20 + n // 255 < 1 << 31:
        return False
    if int.from_bytes(ctypes.string_at(src, 4), "little") != n:
        return False
    return lz4_decompress(src + 4, dst, src_len - 4, n) == n
