"""Block payload codecs (docs/hxz-format.md §6): LZ4 size-prepended raw block, Zstd frame.

A decoder is a callable ``decode(payload, logical_len) -> bytes`` that raises ValueError
with a short reason; the caller turns it into a BlockError naming file and offsets.  Where
the native libraries are present (hxz/native.py) a decoder also has ``decode_at(src, src_len,
dst, n) -> bool``, which decodes between raw addresses and only says whether that worked:
the fast paths call it and hand any failure to the callable for the reason.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

import lz4.block
import zstandard

from . import native

Decoder = Callable[[memoryview, int], bytes]
_prefix = struct.Struct("<I").unpack_from
_lz4_decompress = lz4.block.decompress


def _lz4_decode(payload: memoryview, logical_len: int) -> bytes:
    if len(payload) < 4:
        raise ValueError(f"LZ4 payload of {len(payload)} bytes is shorter than its size prefix")
    prefix = _prefix(payload)[0]
    if prefix != logical_len:
        # Checked before decompressing: a corrupt prefix must not size an allocation.
        raise ValueError(f"LZ4 size prefix {prefix} != logical_len {logical_len}")
    try:
        # With an explicit size python-lz4 treats the whole source as one raw block.
        out = _lz4_decompress(payload[4:], uncompressed_size=logical_len)
    except lz4.block.LZ4BlockError as e:
        raise ValueError(f"LZ4 decompression failed ({e})") from None
    if len(out) != logical_len:
        raise ValueError(f"LZ4 block decompressed to {len(out)} bytes, expected {logical_len}")
    return out


class _Lz4Decoder:
    """LZ4 payloads: python-lz4 for the message, liblz4 for the fast paths."""

    def __init__(self) -> None:
        if native.AVAILABLE:
            self.decode_at = native.lz4_decode_at

    def __call__(self, payload: memoryview, logical_len: int) -> bytes:
        return _lz4_decode(payload, logical_len)


class _ZstdDecoder:
    """Zstd frames without a content-size field; one decompression context per thread."""

    def __init__(self, dict_bytes: bytes | None) -> None:
        self._dict = zstandard.ZstdCompressionDict(dict_bytes) if dict_bytes else None
        self._local = threading.local()
        if native.ZSTD_AVAILABLE:
            self.decode_at = native.ZstdNative(dict_bytes).decode_at

    def _ctx(self) -> zstandard.ZstdDecompressor:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = zstandard.ZstdDecompressor(dict_data=self._dict) if self._dict \
                else zstandard.ZstdDecompressor()
            self._local.ctx = ctx
        return ctx

    def __call__(self, payload: memoryview, logical_len: int) -> bytes:
        decode_at = getattr(self, "decode_at", None)
        if decode_at is not None and logical_len and len(payload):
            # Straight into the result; on failure fall through for python-zstandard's
            # reason (same bytes, same verdict).
            src = memoryview(payload)
            if src.readonly:                # ctypes hands out addresses of writable buffers
                src = memoryview(bytearray(src))
            out = native.uninitialized(logical_len)
            if decode_at(native.address(src), len(src), native.address(out), logical_len):
                return out
        if logical_len == 0:
            # max_output_size=0 means "unbounded" to python-zstandard; decode via a stream.
            try:
                out = self._ctx().decompressobj().decompress(payload)
            except zstandard.ZstdError as e:
                raise ValueError(f"Zstd decompression failed ({e})") from None
        else:
            try:
                out = self._ctx().decompress(payload, max_output_size=logical_len)
            except zstandard.ZstdError as e:
                raise ValueError(f"Zstd decompression failed ({e})") from None
        if len(out) != logical_len:
            raise ValueError(f"Zstd frame decompressed to {len(out)} bytes, expected "
                             f"{logical_len}")
        return out


def make_decoder(compression: str, dict_bytes: bytes | None = None) -> Decoder:
    """Return the payload decoder for an archive's compression (and optional dictionary)."""
    if compression == "lz4":
        if dict_bytes:
            raise ValueError("an LZ4 archive with a dictionary is not a known layout")
        return _Lz4Decoder()
    if compression == "zstd":
        return _ZstdDecoder(dict_bytes)
    raise ValueError(f"unknown compression {compression!r}")
