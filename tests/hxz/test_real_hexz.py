"""A few archives written by the real hexz 0.8.2 package, compared with their inputs."""

from __future__ import annotations

import json
import os
import random

import hexz
import pytest

import hxz
from hxz.__main__ import main as hxz_info

R = random.Random(11)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    base = R.randbytes(1_500_000)
    (d / "base.bin").write_bytes(base)
    shifted = R.randbytes(333) + base[:700_000] + R.randbytes(4000) + base[700_000:]
    (d / "shift.bin").write_bytes(shifted)
    mixed = R.randbytes(200_000) + bytes(2 << 20) + b"line of text\n" * 20000
    (d / "mixed.bin").write_bytes(mixed)
    cwd = os.getcwd()
    os.chdir(d)            # parent paths are stored as given: keep them relative
    try:
        hexz.pack("base.bin", "base.hxz", compression="lz4")
        hexz.pack("shift.bin", "shift.hxz", base="base.hxz", compression="zstd")
        top = shifted[:100] + R.randbytes(50) + shifted[100:]
        (d / "top.bin").write_bytes(top)
        hexz.pack("top.bin", "top.hxz", base="shift.hxz", compression="lz4")
        for c in ("lz4", "zstd"):
            hexz.pack("mixed.bin", f"mixed.{c}.hxz", compression=c)
        (d / "tree" / "sub").mkdir(parents=True)
        (d / "tree" / "sub" / "f.bin").write_bytes(base[:70_000])
        (d / "tree" / "memory").write_bytes(base[5:9000])
        hexz.pack("tree", "tree.hxz", compression="lz4")
    finally:
        os.chdir(cwd)
    return d


@pytest.mark.parametrize("name,src", [("base.hxz", "base.bin"), ("shift.hxz", "shift.bin"),
                                      ("top.hxz", "top.bin"), ("mixed.lz4.hxz", "mixed.bin"),
                                      ("mixed.zstd.hxz", "mixed.bin")])
def test_real_archives_read_back_byte_exact(real, name, src):
    expect = (real / src).read_bytes()
    with hxz.open_archive(real / name) as a:
        s = a.stream()
        assert s.read(0, s.size) == expect
        r = random.Random(1)
        for _ in range(50):
            o = r.randrange(len(expect))
            n = r.randint(0, min(300_000, len(expect) - o))
            assert s.read(o, n) == expect[o:o + n]


def test_real_zero_run_is_reported_as_zero(real):
    with hxz.open_archive(real / "mixed.lz4.hxz") as a:
        ext = a.stream().extents(0, a.stream().size)
        zero = sum(n for _, n, z in ext if z)
        assert zero > (2 << 20) - 200_000      # most of the 2 MiB zero run


def test_real_directory_archive(real):
    with hxz.open_archive(real / "tree.hxz") as a:
        assert {m.path for m in a.members()} == {"sub/f.bin", "memory"}
        f = a.member("sub/f.bin")
        assert f.read(0, f.size) == (real / "tree" / "sub" / "f.bin").read_bytes()
        assert a.stream("memory").read(0, 8995) == (real / "tree" / "memory").read_bytes()


def test_hxz_info_cli(real, capsys, tmp_path):
    assert hxz_info([str(real / "top.hxz")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parent_chain"] == [str(real / "shift.hxz"), str(real / "base.hxz")]
    bad = tmp_path / "bad.hxz"
    bad.write_bytes(b"NOPE" + bytes(5000))
    assert hxz_info([str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad magic" in err and "bad.hxz" in err
