"""HEAD and GET: every range form and edge, whole-device streaming, keep-alive, curl."""

from __future__ import annotations

import subprocess

import pytest
import requests

from tests.support.diskserver import start_server

SIZE = 8 << 20


@pytest.fixture
def server(shared):
    return shared[0]


@pytest.fixture
def disk(shared):
    return None, shared[1]


def test_head(server):
    r = requests.head(server.url, timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(SIZE)
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.content == b""


def test_get_without_range_streams_everything(server, disk):
    r = requests.get(server.url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(SIZE)
    assert r.content == disk[1]


@pytest.mark.parametrize("spec,first,last", [
    ("0-0", 0, 0),                          # first byte
    (f"{SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),   # last byte
    ("8192-12287", 8192, 12287),            # S1: the end must be offset+length-1
    (f"{SIZE - 4096}-{SIZE}", SIZE - 4096, SIZE - 1),  # end at size (curl plugin style)
    (f"0-{SIZE}", 0, SIZE - 1),             # whole device with an end at size
    (f"{SIZE - 10}-{SIZE + 5000}", SIZE - 10, SIZE - 1),   # end past the size
    ("4194300-", 4194300, SIZE - 1),        # open end
    ("-1", SIZE - 1, SIZE - 1),             # suffix
    ("-4096", SIZE - 4096, SIZE - 1),
    (f"-{SIZE * 2}", 0, SIZE - 1),          # suffix longer than the device
])
def test_range_forms(server, disk, spec, first, last):
    r = requests.get(server.url, headers={"Range": f"bytes={spec}"}, timeout=10)
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert r.headers["Content-Length"] == str(last - first + 1)
    assert r.content == disk[1][first:last + 1]


@pytest.mark.parametrize("spec", [f"{SIZE}-", f"{SIZE}-{SIZE + 10}", f"{SIZE * 4}-{SIZE * 5}",
                                  "-0", "0-1,4-5", "0-0, -1"])
def test_unsatisfiable_ranges(server, spec):
    r = requests.get(server.url, headers={"Range": f"bytes={spec}"}, timeout=5)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("value", ["bytes=abc", "bytes=10-5", "pages=0-1", "bytes=-"])
def test_malformed_range_is_400_with_reason(server, value):
    r = requests.get(server.url, headers={"Range": value}, timeout=5)
    assert r.status_code == 400
    reason = r.text
    assert reason.endswith("\n") and reason.count("\n") == 1
    assert "Range" in reason


def test_curl_ranges(server, disk, tmp_path):
    """The curl binary agrees byte for byte, including the exit status (S2: curl exit 18)."""
    for spec, lo, hi in [("0-4095", 0, 4096), (f"{SIZE - 100}-{SIZE}", SIZE - 100, SIZE),
                         ("1000000-", 1000000, SIZE), ("-777", SIZE - 777, SIZE)]:
        out = subprocess.run(["curl", "-sS", "-f", "-r", spec, server.url],
                             capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert out.stdout == disk[1][lo:hi]
    whole = subprocess.run(["curl", "-sS", "-f", server.url], capture_output=True, timeout=20)
    assert whole.returncode == 0 and whole.stdout == disk[1]


def test_empty_file(tmp_path):
    p = tmp_path / "empty.img"
    p.write_bytes(b"")
    s = start_server(["--disk", str(p)], tmp_path)
    try:
        r = requests.get(s.url, timeout=5)
        assert r.status_code == 200 and r.content == b""
        r = requests.get(s.url, headers={"Range": "bytes=0-"}, timeout=5)
        assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */0"
    finally:
        assert s.stop() == 0
