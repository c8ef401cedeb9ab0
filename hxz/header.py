"""The 4096-byte header region (docs/hxz-format.md §3).

The bincode ``Header`` struct starts at byte 0 (the magic is its first field).  Decoding
that would need bytes beyond 4096 is fatal: the writer does not check that, and such a
file overlaps its first data block.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bincode import Cursor, DecodeError
from .errors import FormatError, UnsupportedError

HEADER_SIZE = 4096
MAGIC = b"HEXZ"
COMPRESSIONS = {0: "lz4", 1: "zstd"}


@dataclass(frozen=True)
class Header:
    version: int
    block_size: int
    index_offset: int
    parent_paths: tuple[str, ...]
    dictionary: tuple[int, int] | None      # (offset, length)
    metadata: tuple[int, int] | None        # (offset, length)
    signature: tuple[int, int] | None       # (offset, length)
    encrypted: bool
    compression: str                        # "lz4" | "zstd"
    has_primary: bool
    has_secondary: bool
    variable_blocks: bool
    cdc_params: tuple[int, int, int] | None  # (f, min, max)
    encoded_length: int


def _option_pair(cur: Cursor, name: str) -> tuple[int | None, int | None]:
    off = cur.u64(f"{name}_offset") if cur.option_tag(f"{name}_offset") else None
    length = cur.u32(f"{name}_length") if cur.option_tag(f"{name}_length") else None
    return off, length


def _pair(path: str, name: str, off: int | None, length: int | None) -> tuple[int, int] | None:
    if off is None and length is None:
        return None
    if off is None or length is None:
        raise FormatError(f"{path}: header has {name} offset and length out of step "
                          f"(one is set, the other is not)")
    return off, length


def parse_header(region: bytes, path: str) -> Header:
    """Decode and sanity-check the header from the first bytes of the file (up to 4096)."""
    if len(region) < 4 or region[:4] != MAGIC:
        got = bytes(region[:4])
        raise FormatError(f"{path}: bad magic {got!r} at offset 0 (not a Hexz archive)")
    cur = Cursor(region[:HEADER_SIZE])
    try:
        cur.raw(4, "magic")
        version = cur.u32("version")
        if version != 1:
            raise UnsupportedError(f"{path}: unsupported format version {version} at offset 4 "
                                   f"(only version 1 is known)")
        block_size = cur.u32("block_size")
        index_offset = cur.u64("index_offset")
        nparents = cur.vec_len(8, "parent_paths")
        parents = tuple(cur.string(f"parent path {i}") for i in range(nparents))
        d_off, d_len = _option_pair(cur, "dictionary")
        m_off, m_len = _option_pair(cur, "metadata")
        s_off, s_len = _option_pair(cur, "signature")
        encrypted = cur.option_tag("encryption")
        if encrypted:
            cur.raw(16, "encryption salt")
            cur.u32("encryption iterations")
        comp_at = cur.offset
        comp = cur.u32("compression")
        if comp not in COMPRESSIONS:
            raise UnsupportedError(f"{path}: unknown compression value {comp} at offset "
                                   f"{comp_at} (known: 0=LZ4, 1=Zstd)")
        has_primary = cur.boolean("has_primary flag")
        has_secondary = cur.boolean("has_secondary flag")
        variable_blocks = cur.boolean("variable_blocks flag")
        cdc = None
        if cur.option_tag("cdc_params"):
            cdc = (cur.u32("cdc f"), cur.u32("cdc min"), cur.u32("cdc max"))
    except DecodeError as e:
        if len(region) < HEADER_SIZE and e.offset >= len(region) - 8:
            raise FormatError(f"{path}: file too short for a Hexz header ({len(region)} bytes, "
                              f"need {HEADER_SIZE})") from None
        raise FormatError(f"{path}: bad header: {e} (header region is {HEADER_SIZE} bytes)"
                          ) from None
    if len(region) < HEADER_SIZE:
        raise FormatError(f"{path}: file too short for a Hexz header ({len(region)} bytes, "
                          f"need {HEADER_SIZE})")
    if encrypted:
        raise UnsupportedError(f"{path}: archive is encrypted; encrypted archives are not "
                               f"supported")
    return Header(
        version=version, block_size=block_size, index_offset=index_offset,
        parent_paths=parents,
        dictionary=_pair(path, "dictionary", d_off, d_len),
        metadata=_pair(path, "metadata", m_off, m_len),
        signature=_pair(path, "signature", s_off, s_len),
        encrypted=encrypted, compression=COMPRESSIONS[comp],
        has_primary=has_primary, has_secondary=has_secondary,
        variable_blocks=variable_blocks, cdc_params=cdc, encoded_length=cur.pos,
    )
