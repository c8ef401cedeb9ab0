"""What an archive holds, read at open: header, master index, dictionary, manifest.

Everything here is read once and kept (memory at open is the header, 28 bytes per index
page, the manifest and, per stream, its last index page); everything else is read lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

from .codecs import Decoder, make_decoder
from .errors import FormatError, UnsupportedError
from .header import HEADER_SIZE, Header, parse_header
from .index import StreamIndex, parse_master_index
from .manifest import MAX_MANIFEST, Member, parse_manifest
from .source import PayloadSource
from .streamid import StreamId

MAX_DICTIONARY = 64 << 20


@dataclass(frozen=True)
class Layout:
    header: Header
    streams: tuple[StreamIndex, StreamIndex]
    decode: Decoder
    members: list[Member]


def read_layout(source: PayloadSource) -> Layout:
    """Decode and check the fixed regions of an archive (raises FormatError)."""
    name = source.name
    h = parse_header(source.pread(min(HEADER_SIZE, source.size), 0), name)
    disk, memory = parse_master_index(lambda off, n: source.pread(n, off), name,
                                      h.index_offset, source.size)
    return Layout(h, (disk, memory), _decoder(source, h),
                  _members(source, h, {s.label: (disk, memory)[s].size for s in StreamId}))


def _decoder(source: PayloadSource, h: Header) -> Decoder:
    dict_bytes = None
    if h.dictionary is not None:
        off, ln = h.dictionary
        if h.compression != "zstd":
            raise UnsupportedError(f"{source.name}: LZ4 archive with a dictionary at offset "
                                   f"{off} is not a supported layout")
        if off < HEADER_SIZE or off + ln > h.index_offset or ln > MAX_DICTIONARY:
            raise FormatError(f"{source.name}: dictionary [{off}, {off + ln}) lies outside "
                              f"the data region")
        dict_bytes = source.pread(ln, off)
    try:
        return make_decoder(h.compression, dict_bytes)
    except Exception as e:  # zstandard rejects a malformed dictionary
        raise FormatError(f"{source.name}: unusable zstd dictionary: {e}") from None


def _members(source: PayloadSource, h: Header, sizes: dict[str, int]) -> list[Member]:
    members: list[Member] = []
    if h.metadata is not None:
        off, ln = h.metadata
        if off < h.index_offset or off + ln > source.size or ln > MAX_MANIFEST:
            raise FormatError(f"{source.name}: manifest [{off}, {off + ln}) lies outside "
                              f"[{h.index_offset}, {source.size}) (truncated file?)")
        members = parse_manifest(source.pread(ln, off), source.name, off, sizes)
    if h.signature is not None:
        off, ln = h.signature
        if off + ln > source.size:
            raise FormatError(f"{source.name}: signature [{off}, {off + ln}) lies past the "
                              f"end of the file ({source.size} bytes; truncated?)")
    return members
