"""Runs of small private LZ4 blocks, checked and decoded a run at a time (hxz/copier.py
``_lz4_run``): clean runs never need the block-by-block pass, and every defect the run
checks look for (CRC-32, size prefix, decoded length) still fails the read naming the block,
wherever it sits in the run."""

from __future__ import annotations

import ctypes
import random
import struct
import zlib
from array import array

import lz4.block
import pytest

import hxz
from hxz import copier, native
from tests.support.archives import builder as B


def test_the_native_libraries_are_there():
    # liblz4 and libdeflate are dependencies (make venv installs them): without them the
    # run path below is not taken at all, so its tests would prove nothing.
    assert native.AVAILABLE

RECORD = 52


def _blocks(seed: int, count: int = 120) -> list[bytes]:
    """1-8 KiB blocks, compressible (text-like) and not (random), all distinct."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        n = rnd.randrange(1024, 8192)
        out.append(rnd.randbytes(n) if i % 4 == 0 else (b"line %06d ok " % i) * (n // 14)
                   + rnd.randbytes(n % 14))
    return out


def _record_at(built: B.Built, k: int) -> int:
    """File offset of record k of the primary stream (one page)."""
    return built.pages["primary"][0][0] + 8 + RECORD * k


def _set_payload(built: B.Built, k: int, payload: bytes) -> None:
    """Replace record k's payload (same length) and give the record the payload's CRC, so
    only the codec checks can notice."""
    r = built.records["primary"][k]
    assert len(payload) == r["length"]
    built.raw[r["offset"]:r["offset"] + r["length"]] = payload
    struct.pack_into("<I", built.raw, _record_at(built, k) + 16, zlib.crc32(payload))


def _payload(built: B.Built, k: int) -> bytes:
    r = built.records["primary"][k]
    return bytes(built.raw[r["offset"]:r["offset"] + r["length"]])


def _damage(built: B.Built, k: int, kind: str) -> str:
    """Damage record k; returns the words the error must contain."""
    r = built.records["primary"][k]
    if kind == "crc":
        built.raw[r["offset"] + r["length"] // 2] ^= 0x5A
        return "CRC mismatch"
    if kind == "prefix":
        # the LZ4 data is intact and decodes to logical_len bytes: only the prefix is off
        p = bytearray(_payload(built, k))
        struct.pack_into("<I", p, 0, r["logical_len"] + 1)
        _set_payload(built, k, bytes(p))
        return "size prefix"
    if kind == "short":
        # the record claims one byte more than its data decodes to (prefix and CRC agree
        # with the claim); the next record gives that byte back so the page stays
        # contiguous, and its own prefix and CRC agree with its claim too
        for j, delta in ((k, 1), (k + 1, -1)):
            rj = built.records["primary"][j]
            n = rj["logical_len"] + delta
            struct.pack_into("<I", built.raw, _record_at(built, j) + 12, n)
            p = bytearray(_payload(built, j))
            struct.pack_into("<I", p, 0, n)
            _set_payload(built, j, bytes(p))
        return f"decompressed to {r['logical_len']} bytes, expected {r['logical_len'] + 1}"
    raise AssertionError(kind)


def _open(tmp_path, built: B.Built, name: str = "a.hxz", **kw) -> hxz.Archive:
    return hxz.open_archive(B.write(tmp_path / name, built), **kw)


class _Spy:
    """Counts runs checked as a whole and runs redone block by block."""

    def __init__(self, monkeypatch, forbid_each: bool = False) -> None:
        self.runs = self.each = 0
        real_run, real_each = copier._lz4_run, copier.Copier._decode_each

        def run(*a, **kw):
            self.runs += 1
            return real_run(*a, **kw)

        def each(*a, **kw):
            self.each += 1
            if forbid_each:
                raise AssertionError("a clean run went block by block")
            return real_each(*a, **kw)

        monkeypatch.setattr(copier, "_lz4_run", run)
        monkeypatch.setattr(copier.Copier, "_decode_each", each)


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_clean_small_runs_are_decoded_a_run_at_a_time(tmp_path, monkeypatch, verify):
    blocks = _blocks(1)
    whole = b"".join(blocks)
    spy = _Spy(monkeypatch, forbid_each=True)
    with _open(tmp_path, B.build([B.data(b) for b in blocks]), verify=verify) as a:
        s = a.stream()
        assert s.read(0, len(whole)) == whole
        rnd = random.Random(3)
        for _ in range(60):
            # requests whose edges split blocks, of every size nbdcopy and qemu use
            off = rnd.randrange(len(whole))
            n = min(rnd.choice([1, 4096, 65536, 262144, 1 << 20]), len(whole) - off)
            assert s.read(off, n) == whole[off:off + n], (off, n)
    assert spy.runs > 30


def test_small_runs_split_by_dedup_and_zero_records_read_exactly(tmp_path, monkeypatch):
    # Records sharing a payload (dedup) and zero records go through the cache; the private
    # blocks around them form runs of every length, down to one block.
    blocks = _blocks(2, 60)
    recs: list[B.Rec] = []
    expect = bytearray()
    rnd = random.Random(4)
    for i, b in enumerate(blocks):
        recs.append(B.data(b))
        expect += b
        if i % 7 == 3:
            again = blocks[rnd.randrange(i + 1)]
            recs.append(B.data(again))          # same content: the same payload
            expect += again
        if i % 5 == 1:
            n = rnd.randrange(1000, 9000)
            recs.append(B.zero(n))
            expect += bytes(n)
    built = B.build(recs)
    spy = _Spy(monkeypatch, forbid_each=True)
    with _open(tmp_path, built) as a:
        s = a.stream()
        assert s.read(0, len(expect)) == expect
        for _ in range(80):
            off = rnd.randrange(len(expect))
            n = min(rnd.choice([1, 3000, 20000, 262144]), len(expect) - off)
            assert s.read(off, n) == expect[off:off + n], (off, n)
    assert spy.runs > 10


@pytest.mark.parametrize("kind", ["crc", "prefix", "short"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_damage_inside_a_small_run_fails_naming_the_block(tmp_path, monkeypatch, kind, where):
    blocks = _blocks(5, 40)
    built = B.build([B.data(b) for b in blocks])
    # A read of [1, end - 1) has records 1..38 as its whole-block middle: one run.  The
    # damaged blocks are random data, so a flipped byte still decodes, to other bytes: only
    # the CRC check can catch it.
    k = {"first": 4, "middle": 20, "last": 36}[where]
    words = _damage(built, k, kind)
    start = sum(len(b) for b in blocks[:k])
    total = sum(len(b) for b in blocks)
    spy = _Spy(monkeypatch)
    with _open(tmp_path, built) as a:
        s = a.stream()
        for _ in range(2):          # nothing of the damaged run was cached
            with pytest.raises(hxz.BlockError) as e:
                s.read(1, total - 2)
            assert f"logical offset {start} " in str(e.value)
            assert words in str(e.value)
        assert spy.runs and spy.each, "the run checks did not see the damage first"
        # the blocks before it still read, through the run path
        before = spy.each
        assert s.read(0, start) == b"".join(blocks)[:start]
        assert spy.each == before


def test_run_check_rejects_each_defect_on_its_own():
    """``_lz4_run`` against payloads laid out by hand: True only when every payload has
    its CRC, a prefix equal to its size, and decodes to exactly that size."""
    data = [(b"abc%04d" % i) * 300 for i in range(5)]
    payloads = [lz4.block.compress(d) for d in data]

    def run(pays: list[bytes], sizes: list[int], crcs: list[int] | None = None) -> bool:
        raw = bytearray(b"".join(pays))
        scratch = (raw, memoryview(raw), native.address(raw))
        out = bytearray(sum(sizes) + 16)
        starts = array("Q", [sum(sizes[:i]) for i in range(len(sizes))])
        crcs = [zlib.crc32(p) for p in pays] if crcs is None else crcs
        ok = copier._lz4_run(scratch, array("I", map(len, pays)), array("I", sizes),
                             array("I", crcs), starts, ctypes.c_char.from_buffer(out), 0)
        if ok:
            assert bytes(out[:sum(sizes)]) == b"".join(data[:len(pays)])
        return ok

    sizes = [len(d) for d in data]
    assert run(payloads, sizes)
    bad_crc = [zlib.crc32(p) for p in payloads]
    bad_crc[2] ^= 1
    assert not run(payloads, sizes, bad_crc)
    assert not run(payloads, sizes[:3] + [sizes[3] + 1] + sizes[4:])   # prefix != size
    short = list(payloads)
    short[4] = struct.pack("<I", sizes[4]) + lz4.block.compress(data[4][:-1], store_size=False)
    assert not run(short, sizes)                                      # decodes 1 byte short
    assert not run(payloads[:1] + [payloads[1][:4]] + payloads[2:], sizes)   # prefix only
    # Each byte of a prefix on its own, in a run of several and of one record.  The LZ4
    # data still decodes to the right size (and the CRC is the payload's): only the
    # prefix check can refuse these.
    assert run(payloads[:1], sizes[:1])
    for byte in range(4):
        bad = bytearray(payloads[2])
        bad[byte] ^= 1
        assert not run(payloads[:2] + [bytes(bad)] + payloads[3:], sizes)
        bad = bytearray(payloads[0])
        bad[byte] ^= 1
        assert not run([bytes(bad)], sizes[:1])
