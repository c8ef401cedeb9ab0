"""A bounds-checked cursor over bincode 1.x default-encoded bytes (docs/hxz-format.md §1).

Fixed-width little-endian integers, u64 length prefixes, 1-byte Option tags.  Every read
checks the limit so that a corrupt length can never make us read (or allocate) past the
region the caller allowed.
"""

import struct

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class DecodeError(ValueError):
    """Raised with the absolute offset at which decoding failed; callers add the file name."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.offset = offset


class Cursor:
    """Sequential reader over ``data``; ``base`` is the absolute file offset of ``data[0]``."""

    __slots__ = ("data", "pos", "base")

    def __init__(self, data: bytes, base: int = 0) -> None:
        self.data = data
        self.pos = 0
        self.base = base

    @property
    def offset(self) -> int:
        """Absolute file offset of the next byte to decode."""
        return self.base + self.pos

    def _take(self, n: int, what: str) -> int:
        start = self.pos
        if n < 0 or start + n > len(self.data):
            raise DecodeError(self.offset, f"{what} runs past the end of its region")
        self.pos = start + n
        return start

    def raw(self, n: int, what: str = "bytes") -> bytes:
        start = self._take(n, what)
        return bytes(self.data[start:start + n])

    def u8(self, what: str = "u8") -> int:
        return self.data[self._take(1, what)]

    def u32(self, what: str = "u32") -> int:
        return _U32.unpack_from(self.data, self._take(4, what))[0]

    def u64(self, what: str = "u64") -> int:
        return _U64.unpack_from(self.data, self._take(8, what))[0]

    def boolean(self, what: str = "bool") -> bool:
        at = self.offset
        v = self.u8(what)
        if v > 1:
            raise DecodeError(at, f"{what}: invalid bool byte {v:#04x}")
        return v == 1

    def option_tag(self, what: str) -> bool:
        """Decode an Option tag: True for Some, False for None."""
        at = self.offset
        v = self.u8(what)
        if v > 1:
            raise DecodeError(at, f"{what}: invalid Option tag {v:#04x}")
        return v == 1

    def string(self, what: str = "string") -> str:
        at = self.offset
        n = self.u64(f"{what} length")
        if n > len(self.data) - self.pos:
            raise DecodeError(at, f"{what}: length {n} runs past the end of its region")
        raw = self.raw(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(at, f"{what}: not valid UTF-8") from None

    def vec_len(self, item_size: int, what: str) -> int:
        """Decode a Vec length and check that ``n * item_size`` bytes remain."""
        at = self.offset
        n = self.u64(f"{what} count")
        if n * item_size > len(self.data) - self.pos:
            raise DecodeError(at, f"{what}: count {n} runs past the end of its region")
        return n
