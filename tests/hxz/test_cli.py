"""hxz-info: one line for every bad input, quiet when its reader goes away."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hxz", *args], capture_output=True,
                          text=True, timeout=60, **kw)


def test_prints_json(cat):
    r = _run(str(cat["dir"].path), "--members")
    assert r.returncode == 0 and '"member_list"' in r.stdout, r.stderr


@pytest.mark.parametrize("what", ["missing", "directory", "not an archive", "empty"])
def test_bad_file_is_one_line(tmp_path, what):
    path = tmp_path / "x.hxz"
    if what == "directory":
        path.mkdir()
    elif what == "not an archive":
        path.write_bytes(b"\x00" * 8192)
    elif what == "empty":
        path.write_bytes(b"")
    r = _run(str(path))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "x.hxz" in r.stderr and "Traceback" not in r.stderr


def test_closed_stdout_is_quiet(cat):
    """`hxz-info X | true`: the reader is gone before the JSON is written."""
    p = subprocess.Popen([sys.executable, "-m", "hxz", str(cat["dir"].path), "--members"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(60) == 1
    assert err == "", err
