"""PATCH zero and flush, OPTIONS, and a read-only server refusing writes."""

from __future__ import annotations

import os

import pytest
import requests

from tests.support.diskserver import start_server

SIZE = 8 << 20


def patch(server, obj, **kw):
    return requests.patch(server.url, json=obj, timeout=5, **kw)


def test_patch_zero_and_flush(server, disk):
    r = patch(server, {"op": "zero", "offset": 1 << 20, "size": 3 << 20, "flush": True})
    assert r.status_code == 200
    # unaligned, through whatever fallback the file system needs
    r = patch(server, {"op": "zero", "offset": 123, "size": 4000})
    assert r.status_code == 200
    assert patch(server, {"op": "flush"}).status_code == 200
    expect = bytearray(disk[1])
    expect[1 << 20:4 << 20] = bytes(3 << 20)
    expect[123:4123] = bytes(4000)
    assert disk[0].read_bytes() == expect
    assert os.path.getsize(disk[0]) == SIZE
    ext = requests.get(server.url + "extents", timeout=5).json()
    holes = [e for e in ext if e["hole"]]
    assert holes and all(e["zero"] for e in holes)
    for e in holes:
        assert e["start"] >= 1 << 20 and e["start"] + e["length"] <= 4 << 20


@pytest.mark.parametrize("obj,status", [
    ({"op": "zero", "offset": SIZE - 1, "size": 2}, 416),
    ({"op": "zero", "offset": -1, "size": 2}, 400),
    ({"op": "zero", "offset": 0}, 400),
    ({"op": "zero", "offset": 0, "size": 1, "flush": "yes"}, 400),
    ({"op": "trim"}, 400),
    (["op", "flush"], 400),
])
def test_patch_refusals(server, disk, obj, status):
    assert patch(server, obj).status_code == status
    assert disk[0].read_bytes() == disk[1]


def test_patch_not_json(server):
    r = requests.patch(server.url, data=b"{nope", timeout=5)
    assert r.status_code == 400 and "JSON" in r.text


def test_options(server):
    r = requests.options(server.url, timeout=5)
    assert r.status_code == 200
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {
        "OPTIONS", "GET", "HEAD", "PUT", "PATCH"}
    body = r.json()
    assert set(body["features"]) == {"zero", "flush", "extents", "write_deadline"}
    assert body["max_readers"] >= 1 and body["max_writers"] >= 1
    assert body["multi_conn"] is True
    assert requests.options(server.url + "nope", timeout=5).status_code == 404


def test_read_only(tmp_path, disk):
    s = start_server(["--disk", str(disk[0]), "--read-only"], tmp_path)
    try:
        r = requests.put(s.url, data=b"x", headers={"Content-Range": "bytes 0-0/*"}, timeout=5)
        assert r.status_code == 403
        assert requests.patch(s.url, json={"op": "flush"}, timeout=5).status_code == 403
        o = requests.options(s.url, timeout=5)
        assert o.json()["features"] == ["extents"]
        assert "PUT" not in o.headers["Allow"]
        assert requests.get(s.url, headers={"Range": "bytes=0-9"}, timeout=5).content == \
            disk[1][:10]
    finally:
        assert s.stop() == 0
    assert disk[0].read_bytes() == disk[1]

