"""GET /info and OPTIONS * on a disk server (the snapshot's /info is in test_snapshot.py,
the not-ready one in test_drbd.py)."""

from __future__ import annotations

import requests

from tests.support.rawhttp import request as raw_request

SIZE = 8 << 20


def test_info_of_a_disk(shared):
    server, _ = shared
    info = requests.get(server.url + "info", timeout=5).json()
    assert info["ready"] is True and info["read_only"] is True
    assert info["routes"] == {"/": {"name": info["routes"]["/"]["name"], "size": SIZE,
                                    "read_only": True, "type": "file"}}
    assert info["routes"]["/"]["name"].endswith("disk.img")
    h = requests.head(server.url + "info", timeout=5)
    assert h.status_code == 200 and h.content == b"" and int(h.headers["Content-Length"]) > 0


def test_writes_to_info_are_405(shared):
    r = raw_request(shared[0].port, b"PUT /info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert r.status == 405 and r.headers["allow"] == "OPTIONS, GET, HEAD"


def test_options_star_and_per_resource(server):
    r = raw_request(server.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {
        "OPTIONS", "GET", "HEAD", "PUT", "PATCH"}
    star = requests.options(server.url, timeout=5).json()
    assert r.body and star["features"] == ["zero", "flush", "extents", "write_deadline"]
    ext = requests.options(server.url + "extents", timeout=5)
    assert ext.headers["Allow"] == "OPTIONS, GET, HEAD" and ext.json() == star
