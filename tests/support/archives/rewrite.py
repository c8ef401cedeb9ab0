"""Re-write a hexz-made archive into variants that hexz 0.8.2's Python API cannot produce but
the format allows (spec §5, §7, §11, §19): a zstd dictionary, explicit zero records, small
index pages, payloads out of logical order, zstd frames with content size and checksum.

The content is decoded here with lz4/zstandard directly (independently of the reader under
test) and laid out again from scratch: header region, optional dictionary at 4096, payloads,
index pages, master index, manifest. The logical bytes stay exactly those of the input, so
the rewritten archive must read back as the same input.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import lz4.block
import zstandard

from tests.support.archives import spec

LZ4, ZSTD = 0, 1


def _decode(payload: bytes, logical_len: int, compression: int) -> bytes:
    if compression == LZ4:
        return lz4.block.decompress(payload)
    return zstandard.ZstdDecompressor().decompress(payload, max_output_size=logical_len)


def rewrite(
    src: Path,
    dst: Path,
    *,
    compression: int | None = None,
    dictionary: bytes | None = None,
    zero_records: bool = False,
    records_per_page: int = 4096,
    reverse_payloads: bool = False,
    zstd_frame_extras: bool = False,
    refs_to_parent: tuple[str, int] | None = None,
) -> None:
    """refs_to_parent=(parent path, stream): turn every stored record of that stream into a
    parent reference (by hash) to the archive at that path, as a thin writer would."""
    layout = spec.parse(src)
    h = layout.header
    raw = src.read_bytes()
    comp = h.compression if compression is None else compression
    if dictionary is not None and comp != ZSTD:
        raise ValueError("a dictionary needs zstd")
    zdict = zstandard.ZstdCompressionDict(dictionary) if dictionary is not None else None
    cctx = zstandard.ZstdCompressor(
        level=3, dict_data=zdict, write_checksum=zstd_frame_extras,
        write_content_size=zstd_frame_extras)

    def encode(content: bytes) -> bytes:
        if comp == LZ4:
            return lz4.block.compress(content, store_size=True)
        return cctx.compress(content)

    # 1. new payloads, deduplicated by original payload offset (as hexz shares them)
    streams = [layout.records(0), layout.records(1)]
    if refs_to_parent is not None:
        ref_stream = refs_to_parent[1]
        streams[ref_stream] = [
            replace(r, offset=spec.PARENT_REF, length=0, checksum=0)
            if r.is_stored and r.logical_len else r for r in streams[ref_stream]]
    payload_of: dict[int, bytes] = {}
    order: list[int] = []
    for recs in streams:
        for r in recs:
            if r.is_stored and r.offset not in payload_of:
                content = _decode(raw[r.offset:r.offset + r.length], r.logical_len,
                                  h.compression)
                assert len(content) == r.logical_len
                if zero_records and r.logical_len and content.count(0) == r.logical_len:
                    payload_of[r.offset] = b""  # becomes a zero record
                else:
                    payload_of[r.offset] = encode(content)
                    order.append(r.offset)
    if reverse_payloads:
        order.reverse()

    out = bytearray(spec.HEADER_REGION)
    dict_pos = None
    if dictionary is not None:
        dict_pos = len(out)
        out += dictionary
    new_pos: dict[int, int] = {}
    for old in order:
        new_pos[old] = len(out)
        out += payload_of[old]

    # 2. index pages of every stream, `records_per_page` records each
    entries: list[list[tuple[int, int, int, int]]] = [[], []]
    block_no = 0
    for sidx, recs in enumerate(streams):
        for i in range(0, len(recs), records_per_page):
            chunk = recs[i:i + records_per_page]
            page = bytearray(struct.pack("<Q", len(chunk)))
            for r in chunk:
                if r.is_parent_ref:
                    off, length, crc = r.offset, 0, 0
                elif not r.is_stored or payload_of[r.offset] == b"":
                    off, length, crc = 0, 0, 0
                else:
                    p = payload_of[r.offset]
                    off, length, crc = new_pos[r.offset], len(p), zlib.crc32(p)
                page += struct.pack("<QIII", off, length, r.logical_len, crc) + r.hash
            entries[sidx].append((len(out), len(page), block_no, chunk[0].start))
            block_no += len(chunk)
            out += page

    # 3. master index, manifest, header
    index_offset = len(out)
    for sidx in (0, 1):
        out += struct.pack("<Q", len(entries[sidx]))
        for e in entries[sidx]:
            out += struct.pack("<QIQQ", *e)
    out += struct.pack("<QQ", *layout.sizes)
    metadata = h.metadata
    if h.metadata[0] is not None:
        man = raw[h.metadata[0]:h.metadata[0] + h.metadata[1]]
        metadata = (len(out), len(man))
        out += man
    parents = h.parent_paths if refs_to_parent is None else [refs_to_parent[0]]
    nh = replace(h, index_offset=index_offset, compression=comp, metadata=metadata,
                 parent_paths=parents,
                 dictionary=(dict_pos, len(dictionary)) if dictionary is not None else
                 (None, None), signature=(None, None))
    out[:spec.HEADER_REGION] = spec.encode_header(nh)
    dst.write_bytes(bytes(out))


def train_dictionary(samples: list[bytes], size: int = 16 << 10) -> bytes:
    return zstandard.train_dictionary(size, samples).as_bytes()
