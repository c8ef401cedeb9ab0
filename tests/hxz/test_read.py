"""Reading hand-built archives: zero/empty records, dedup, pages, both streams, manifest,
extents, dictionaries, and per-block corruption errors."""

from __future__ import annotations

import os
import random
import struct

import pytest
import zstandard

import hxz
from tests.support.archives import builder as B

RNG = random.Random(5)


def rnd(n: int) -> bytes:
    return RNG.randbytes(n)


def expected_of(recs: list[B.Rec]) -> bytes:
    return b"".join(bytes(r.length) if r.kind == "zero" else r.data for r in recs)


def check_stream(s, expect: bytes, samples: int = 300) -> None:
    assert s.size == len(expect)
    assert s.read(0, s.size) == expect
    r = random.Random(len(expect))
    for _ in range(samples):
        o = r.randrange(0, len(expect) + 1)
        n = r.randrange(0, len(expect) - o + 1)
        buf = bytearray(n)
        s.readinto(buf, o)
        assert buf == expect[o:o + n], (o, n)


MIXED = [B.data(rnd(3000)), B.zero(5000), B.empty(), B.data(b"t" * 7000), B.data(rnd(1)),
         B.zero(1), B.data(b"t" * 7000), B.empty(), B.data(rnd(4097)), B.zero(70000),
         B.empty(), B.empty()]


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
@pytest.mark.parametrize("page_records", [1, 3, 4096])
def test_mixed_records_read_back(tmp_path, compression, page_records):
    built = B.build(MIXED, compression=compression, page_records=page_records)
    with hxz.open_archive(B.write(tmp_path / "m.hxz", built)) as a:
        check_stream(a.stream("disk"), expected_of(MIXED))
        info = a.info()
        assert info["disk_blocks"] == len(MIXED)
        assert info["disk_pages"] == -(-len(MIXED) // page_records)


def test_dedup_records_share_one_payload_and_one_cache_entry(tmp_path):
    block = rnd(10000)
    recs = [B.data(block), B.data(rnd(10)), B.data(block), B.data(block)]
    built = B.build(recs)
    offs = [r["offset"] for r in built.records["primary"]]
    assert offs[0] == offs[2] == offs[3]
    with hxz.open_archive(B.write(tmp_path / "d.hxz", built)) as a:
        s = a.stream()
        check_stream(s, expected_of(recs), samples=50)
        blocks = a.block_cache
        assert len(blocks) <= 2        # the shared payload and the 10-byte one, at most


def test_zero_records_only_stream(tmp_path):
    recs = [B.zero(1 << 20), B.zero(3), B.zero((1 << 20) + 5)]   # also > the zero buffer
    built = B.build(recs)
    with hxz.open_archive(B.write(tmp_path / "z.hxz", built)) as a:
        s = a.stream()
        check_stream(s, expected_of(recs), samples=20)
        assert s.extents(0, s.size) == [(0, s.size, True)]


def test_empty_and_zero_record_streams(tmp_path):
    built = B.build([B.empty(), B.empty()], [])
    with hxz.open_archive(B.write(tmp_path / "e.hxz", built)) as a:
        assert a.stream().size == 0
        assert a.stream().read(0, 0) == b""
        assert a.stream().extents(0, 0) == []
        assert a.stream("memory").size == 0
        with pytest.raises(ValueError):
            a.stream().read(0, 1)


def test_both_streams_and_stream_names(tmp_path):
    prim = [B.data(rnd(5000)), B.data(rnd(100))]
    sec = [B.data(rnd(7000)), B.zero(100), B.data(prim[0].data)]   # cross-stream dedup
    built = B.build(prim, sec, page_records=2)
    with hxz.open_archive(B.write(tmp_path / "s.hxz", built)) as a:
        for name in ("disk", "primary"):
            check_stream(a.stream(name), expected_of(prim), 30)
        for name in ("memory", "secondary"):
            check_stream(a.stream(name), expected_of(sec), 30)
        with pytest.raises(ValueError):
            a.stream("swap")


def test_out_of_range_reads_raise_value_error(tmp_path):
    built = B.build([B.data(b"abc")])
    with hxz.open_archive(B.write(tmp_path / "r.hxz", built)) as a:
        s = a.stream()
        for off, n in ((-1, 1), (0, 4), (3, 1), (4, 0)):
            with pytest.raises(ValueError):
                s.read(off, n)
        assert s.read(3, 0) == b""


def test_manifest_members(tmp_path):
    files = {"a.txt": b"hello " * 100, "sub/b.bin": rnd(9000), "e": b"",
             "sub/memory": b"not secondary", "memory": rnd(3000)}
    prim, entries, off = [], [], 0
    for name, body in files.items():
        if name == "memory":
            continue
        if body:
            prim.append(B.data(body))
        entries.append({"path": name, "offset": off, "size": len(body), "mode": 33188,
                        "mtime": 1700000000})
        off += len(body)
    entries.append({"path": "memory", "offset": 0, "size": 3000, "mode": 33188, "mtime": 5})
    built = B.build(prim, [B.data(files["memory"])], manifest=entries)
    with hxz.open_archive(B.write(tmp_path / "dir.hxz", built)) as a:
        assert [m.path for m in a.members()] == [e["path"] for e in entries]
        for name, body in files.items():
            v = a.member(name)
            assert v.size == len(body)
            assert v.read(0, v.size) == body
            if body:
                assert v.read(1, len(body) - 1) == body[1:]
                assert v.extents(0, v.size)[0][0] == 0
        assert a.member("memory").member.stream == "memory"
        assert a.member("sub/memory").member.stream == "disk"
        with pytest.raises(KeyError):
            a.member("nope")
        assert a.info()["members"] == len(entries)


def test_extents_merge_zero_records_and_all_zero_payloads(tmp_path):
    recs = [B.data(rnd(4000)), B.zero(1000), B.data(bytes(8192)), B.empty(),
            B.data(bytes(8192)), B.data(rnd(10)), B.data(b"\0" * 100 + b"\1"),
            B.zero(50)]
    built = B.build(recs, page_records=3)
    with hxz.open_archive(B.write(tmp_path / "x.hxz", built)) as a:
        s = a.stream()
        ext = s.extents(0, s.size)
        assert ext == [(0, 4000, False), (4000, 1000 + 8192 + 8192, True),
                       (4000 + 17384, 10 + 101, False), (4000 + 17384 + 111, 50, True)]
        # Starting mid-record and ending early.
        assert s.extents(4500, 100) == [(4500, 100, True)]
        assert s.extents(3999, 2)[:2] == [(3999, 1, False), (4000, 1, True)]
        # Runs claimed as zero really are zero.
        body = s.read(0, s.size)
        for start, n, z in ext:
            if z:
                assert body[start:start + n] == bytes(n)


def test_extents_stop_early_on_long_ranges(tmp_path, monkeypatch):
    import hxz.extents
    monkeypatch.setattr(hxz.extents, "EXTENTS_RECORD_BUDGET", 4)
    recs = [B.data(rnd(100)) if i % 2 else B.zero(100) for i in range(20)]
    built = B.build(recs, page_records=5)
    with hxz.open_archive(B.write(tmp_path / "y.hxz", built)) as a:
        ext = a.stream().extents(0, 2000)
        assert ext[0][0] == 0 and 0 < sum(n for _, n, _ in ext) < 2000


def test_zstd_with_dictionary(tmp_path):
    samples = [b"common prefix %d and some text\n" % i * 20 for i in range(200)]
    d = zstandard.train_dictionary(4096, samples).as_bytes()
    recs = [B.data(b"common prefix 7 and some text\n" * 30), B.data(rnd(500)), B.empty()]
    built = B.build(recs, compression="zstd", dict_bytes=d)
    with hxz.open_archive(B.write(tmp_path / "dict.hxz", built)) as a:
        assert a.info()["dictionary"] is True
        check_stream(a.stream(), expected_of(recs), 20)


def _corrupt_archive(tmp_path, mutate) -> str:
    recs = [B.data(rnd(5000)), B.data(b"q" * 6000)]
    built = B.build(recs)
    rec = built.records["primary"][1]
    mutate(built, rec)
    return B.write(tmp_path / "c.hxz", built)


def _set_record_field(built, k, fmt, rel, value):
    page_off = built.pages["primary"][0][0]
    struct.pack_into(fmt, built.raw, page_off + 8 + 52 * k + rel, value)


@pytest.mark.parametrize("mutate,needle", [
    (lambda b, r: b.raw.__setitem__(r["offset"] + 6, b.raw[r["offset"] + 6] ^ 0x55),
     "CRC mismatch"),
    (lambda b, r: _set_record_field(b, 1, "<I", 16, 0), "CRC mismatch"),
    (lambda b, r: (_set_record_field(b, 1, "<I", 12, 5999),
                   struct.pack_into("<Q", b.raw, b.index_offset + 8 + 28 + 8, 10999)),
     "!= logical_len 5999"),
])
def test_block_errors_name_file_offsets_and_never_return_data(tmp_path, mutate, needle):
    path = _corrupt_archive(tmp_path, mutate)
    try:
        a = hxz.open_archive(path)
    except hxz.FormatError:
        pytest.fail("per-block corruption must not prevent opening")
    with a:
        s = a.stream()
        assert len(s.read(0, 100)) == 100            # the intact block still reads
        for off, n in ((5000, 10), (4990, 20), (0, s.size)):
            with pytest.raises(hxz.BlockError) as e:
                s.read(off, n)
            msg = str(e.value)
            assert needle in msg and "c.hxz" in msg and "logical offset 5000" in msg
            assert "payload offset" in msg and "\n" not in msg


def test_lz4_size_prefix_mismatch_is_block_error(tmp_path):
    import zlib
    recs = [B.data(b"p" * 3000)]
    built = B.build(recs)
    r = built.records["primary"][0]
    struct.pack_into("<I", built.raw, r["offset"], 2999)           # prefix
    crc = zlib.crc32(bytes(built.raw[r["offset"]:r["offset"] + r["length"]]))
    _set_record_field(built, 0, "<I", 16, crc)
    with hxz.open_archive(B.write(tmp_path / "p.hxz", built)) as a:
        with pytest.raises(hxz.BlockError, match="size prefix 2999"):
            a.stream().read(0, 1)


def test_zstd_decompressed_size_mismatch_is_block_error(tmp_path):
    import zlib
    recs = [B.data(b"z" * 3000), B.data(rnd(100))]
    built = B.build(recs, compression="zstd")
    _set_record_field(built, 0, "<I", 12, 2000)                    # logical_len lies
    # keep the stream size consistent so only the block is wrong
    struct.pack_into("<Q", built.raw, built.index_offset + 8 + 28 + 8, 2100)
    with hxz.open_archive(B.write(tmp_path / "zs.hxz", built)) as a:
        with pytest.raises(hxz.BlockError, match="Zstd"):
            a.stream().read(0, 10)
    del zlib


def test_truncated_payload_region_is_block_error(tmp_path):
    built = B.build([B.data(rnd(3000))])
    path = B.write(tmp_path / "t.hxz", built)
    with hxz.open_archive(path) as a:
        os.truncate(path, 4096 + 100)         # shrinks under an open archive
        with pytest.raises(hxz.HxzError):
            a.stream().read(0, 3000)


def test_bulk_path_mixed_records_and_corruption_in_the_middle(tmp_path):
    # Many small records read in one request take the bulk path (no cache); one corrupt
    # block in the middle must fail the whole read with its own offset.
    r = random.Random(21)
    recs = []
    for i in range(300):
        recs.append([B.data(r.randbytes(r.randint(1, 3000))), B.zero(r.randint(1, 500)),
                     B.empty(), B.data(b"same" * 100)][i % 4])
    expect = expected_of(recs)
    built = B.build(recs, page_records=64)
    path = B.write(tmp_path / "bulk.hxz", built)
    with hxz.open_archive(path) as a:
        s = a.stream()
        assert s.read(0, s.size) == expect
        assert s.read(17, s.size - 40) == expect[17:-23]
    victim = next(rec for i, rec in enumerate(built.records["primary"])
                  if i > 100 and i % 4 == 0)
    built.raw[victim["offset"] + 7] ^= 0x40
    path = B.write(tmp_path / "bulk_bad.hxz", built)
    with hxz.open_archive(path) as a:
        s = a.stream()
        with pytest.raises(hxz.BlockError) as e:
            s.read(0, s.size)
        assert f"logical offset {victim['logical']}" in str(e.value)
        assert s.read(0, victim["logical"]) == expect[:victim["logical"]]


def test_bulk_path_with_parent_refs(tmp_path):
    r = random.Random(22)
    pieces = [r.randbytes(r.randint(100, 2000)) for _ in range(200)]
    B.write(tmp_path / "p.hxz", B.build([B.data(x) for x in pieces], page_records=50))
    child = []
    for i, x in enumerate(reversed(pieces)):
        child.append(B.parent(x) if i % 3 else B.data(b"new%d" % i * 10))
    expect = b"".join(c.data for c in child)
    path = B.write(tmp_path / "c.hxz", B.build(child, parents=("p.hxz",), page_records=40))
    with hxz.open_archive(path) as a:
        s = a.stream()
        assert s.read(0, s.size) == expect
        assert s.read(5, s.size - 10) == expect[5:-5]
