"""Random bit flips in real archives: the reader refuses, fails the read, or reads right.

Corrupt input must never yield wrong bytes.  Each case flips a few bits of a
hexz-written archive (biased towards the header and the metadata at the end,
where one bit changes the most) and then reads every export: the outcome must be
a FormatError at open, a BlockError on the read, or exactly the packed input.
A second test turns index records into zero records (length, offset and checksum set to 0
in every combination): a lost length must never read as zeros.  Seeds are fixed, so a
failure names a reproducible case.
"""

from __future__ import annotations

import random

import hexz
import pytest

import hxz
from tests.support.archives import spec

CASES = 300


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    rng = random.Random(20261121)
    root = tmp_path_factory.mktemp("fuzz")
    parts = [rng.randbytes(70000), bytes(50000), b"text line\n" * 3000]
    data = b"".join(rng.choice(parts) for _ in range(24))
    (root / "in.bin").write_bytes(data)
    tree = root / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.bin").write_bytes(data[:200_000])
    (tree / "sub" / "b.bin").write_bytes(data[200_000:500_000])
    (tree / "memory").write_bytes(data[500_000:700_000])
    out = {}
    for name, src, comp, exports in (
        ("lz4.hxz", root / "in.bin", "lz4", {"": data}),
        ("zstd.hxz", root / "in.bin", "zstd", {"": data}),
        ("dir.hxz", tree, "lz4", {"": data[:500_000], "a.bin": data[:200_000],
                                  "sub/b.bin": data[200_000:500_000],
                                  "memory": data[500_000:700_000]}),
    ):
        hexz.pack(str(src), str(root / name), compression=comp)
        records = [r for stream in (0, 1) for r in spec.parse(root / name).records(stream)
                   if r.is_stored and r.logical_len]
        out[name] = ((root / name).read_bytes(), exports, records)
    return root, out


def _flip(rng: random.Random, good: bytes) -> bytes:
    bad = bytearray(good)
    for _ in range(rng.choice((1, 1, 2, 8))):
        where = rng.random()
        if where < 0.3:
            pos = rng.randrange(0, 100)                            # header fields
        elif where < 0.6:
            pos = rng.randrange(max(0, len(bad) - 600), len(bad))  # index, manifest
        else:
            pos = rng.randrange(len(bad))
        bad[pos] ^= 1 << rng.randrange(8)
    return bytes(bad)


ZERO_FIELDS = ((8, 4), (0, 8), (16, 4))    # (offset in the record, width): length, offset, crc


def _zero_records(rng: random.Random, good: bytes, records: list) -> bytes:
    """Turn one to three stored records into (would-be) zero records: length 0, and maybe
    offset and checksum 0 too, the way someone editing the index by hand would."""
    bad = bytearray(good)
    for r in rng.sample(records, rng.choice((1, 1, 3))):
        fields = [ZERO_FIELDS[0]] + [f for f in ZERO_FIELDS[1:] if rng.random() < 0.6]
        for rel, width in fields:
            bad[r.pos + rel:r.pos + rel + width] = bytes(width)
    return bytes(bad)


def _outcome(path, exports: dict[str, bytes], verify: str = "crc") -> list[str]:
    try:
        archive = hxz.open_archive(path, cache_size=1 << 20, verify=verify)
    except hxz.FormatError as e:
        assert "\n" not in str(e)
        return ["refused"]
    results = []
    with archive:
        for name, expected in exports.items():
            try:
                view = archive.stream("disk") if name == "" else archive.member(name)
            except KeyError:
                results.append("refused")
                continue
            try:
                # A damaged size may claim more bytes than were packed: read what was packed
                # plus a bounded tail, which must fail rather than invent data.
                n = min(view.size, len(expected))
                got = view.read(0, n) + view.read(n, min(view.size - n, 1 << 20))
            except hxz.BlockError as e:
                assert "\n" not in str(e)
                results.append("eio")
                continue
            assert got == expected, f"wrong bytes for export {name!r}"
            results.append("ok")
    return results


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_bit_flips_never_yield_wrong_bytes(packed, tmp_path, verify):
    root, archives = packed
    rng = random.Random(7)
    seen: dict[str, int] = {}
    for case in range(CASES):
        name = rng.choice(sorted(archives))
        good, exports, _ = archives[name]
        bad = tmp_path / "bad.hxz"
        bad.write_bytes(_flip(rng, good))
        try:
            for outcome in _outcome(bad, exports, verify):
                seen[outcome] = seen.get(outcome, 0) + 1
        except AssertionError as e:
            raise AssertionError(f"case {case} ({name}): {e}") from None
    # The mix shows the corruption really reached every kind of outcome.
    assert seen.get("refused", 0) and seen.get("eio", 0) and seen.get("ok", 0), seen


@pytest.mark.parametrize("verify", ["crc", "hash"])
def test_zero_record_flips_never_yield_wrong_bytes(packed, tmp_path, verify):
    root, archives = packed
    rng = random.Random(11)
    seen: dict[str, int] = {}
    for case in range(CASES // 3):
        name = rng.choice(sorted(archives))
        good, exports, records = archives[name]
        bad = tmp_path / "bad.hxz"
        bad.write_bytes(_zero_records(rng, good, records))
        try:
            for outcome in _outcome(bad, exports, verify):
                seen[outcome] = seen.get(outcome, 0) + 1
        except AssertionError as e:
            raise AssertionError(f"case {case} ({name}): {e}") from None
    # Damaged pages fail the reads that need them; the other exports still read.
    assert seen.get("eio", 0) and seen.get("ok", 0), seen
