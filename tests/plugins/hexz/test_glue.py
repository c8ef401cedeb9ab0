"""Focused checks of plugins/hexz.py glue (the full suite is the rest of this folder)."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import nbd
import pytest

from tests.support.archives import builder as B

PLUGIN = str(Path(__file__).resolve().parents[3] / "plugins" / "hexz.py")


def connect(path: str, *extra: str, export: str = "") -> nbd.NBD:
    h = nbd.NBD()
    h.set_export_name(export)
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_command(["nbdkit", "-s", "--exit-with-parent", "python", PLUGIN,
                       f"file={path}", *extra])
    return h


def test_refused_start_prints_one_line(tmp_path):
    bad = tmp_path / "bad.hxz"
    bad.write_bytes(b"HEXX" + bytes(5000))
    sock = tmp_path / "s.sock"
    p = subprocess.run(["nbdkit", "-f", "-U", str(sock), "python", PLUGIN, f"file={bad}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "bad.hxz" in lines[0] and "bad magic" in lines[0] and "Traceback" not in p.stderr


def test_extents_reads_and_errors(tmp_path):
    recs = [B.data(b"a" * 5000), B.zero(8192), B.data(bytes(8192)), B.data(b"b" * 100)]
    built = B.build(recs)
    built.raw[built.records["primary"][3]["offset"] + 5] ^= 0xFF      # corrupt last block
    path = B.write(tmp_path / "x.hxz", built)
    h = connect(path)
    try:
        size = h.get_size()
        assert size == 5000 + 8192 + 8192 + 100
        assert h.is_read_only() and h.can_multi_conn()
        assert h.pread(5000, 0) == b"a" * 5000
        assert h.pread(16384, 5000) == bytes(16384)
        seen = []

        def cb(metacontext, offset, entries, err):
            seen.extend(entries)
            return 0

        h.block_status(size, 0, cb)
        # pairs of (length, flags): data, then hole|zero for both zero kinds, then data
        assert seen[:2] == [5000, 0]
        assert seen[2:4] == [16384, nbd.STATE_HOLE | nbd.STATE_ZERO]
        with pytest.raises(nbd.Error) as e:
            h.pread(10, size - 10)
        assert e.value.errno == "EIO" or e.value.errno == errno.EIO
        with pytest.raises(nbd.Error):
            h.pread(2, size - 1)                     # past the end: refused, never padded
    finally:
        h.shutdown()


def test_member_exports(tmp_path):
    entries = [{"path": "d/one", "offset": 0, "size": 3, "mode": 33188, "mtime": 1},
               {"path": "two", "offset": 3, "size": 2, "mode": 33188, "mtime": 1}]
    path = B.write(tmp_path / "t.hxz", B.build([B.data(b"abcde")], manifest=entries))
    h = connect(path, export="d/one")
    try:
        assert h.get_size() == 3 and h.pread(3, 0) == b"abc"
    finally:
        h.shutdown()
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.connect_command(["nbdkit", "-s", "--exit-with-parent", "python", PLUGIN, f"file={path}"])
    try:
        names = []
        h.opt_list(lambda name, desc: names.append(name) or 0)
        assert names == ["", "d/one", "two"]
    finally:
        h.opt_abort()
