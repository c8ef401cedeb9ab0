"""Requests refused by the HTTP layer, before the S3 face reads them, still get S3's XML
error (an SDK reads its code) and close the connection."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest

from tests.support.diskserver import start_server

from .conftest import BUCKET


def _exchange(url: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; read the reply until the server closes."""
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(("raw", "status", "code", "resource"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "InvalidURI", "/"),
    (f"GET /{BUCKET}/raw.img?x-id=GetObject HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
     "Content-Length: 5\r\n\r\n".encode(), 400, "InvalidRequest", f"/{BUCKET}/raw.img"),
    (b"GET /x HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "InvalidRequest", "/"),
    (b"GET /x HTTP/9.9\r\nHost: x\r\n\r\n", 505, "NotImplemented", "/"),
])
def test_refusals_of_the_http_layer_are_s3_xml(gateway, raw, status, code, resource):
    got, headers, body = _exchange(gateway.url, raw)
    assert got == status, body
    assert headers["content-type"] == "application/xml"
    assert headers["x-amz-request-id"] and headers["connection"].lower() == "close"
    err = ET.fromstring(body)
    assert err.tag == "Error" and err.findtext("Code") == code
    assert err.findtext("RequestId") == headers["x-amz-request-id"]
    assert err.findtext("Message")
    assert err.findtext("Resource") == resource


def test_the_disk_api_keeps_plain_text_refusals(tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(4096))
    s = start_server(["--disk", str(disk), "--read-only"], tmp_path)
    try:
        got, headers, body = _exchange(s.url, b"GET /x HTTP/1.1 extra\r\nHost: x\r\n\r\n")
        assert got == 400 and headers["content-type"].startswith("text/plain")
        assert body.count(b"\n") == 1
    finally:
        assert s.stop() == 0


def test_a_refused_line_never_names_the_previous_request_of_the_connection(gateway):
    first = f"GET /{BUCKET}/raw.img HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    u = urlsplit(gateway.url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall(first + b"GET /x HTTP/1.1 extra\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    replies = data.split(b"HTTP/1.")
    assert len(replies) == 3, data[:500]        # "", the unsigned GET's 403, the 400
    assert b" 403 " in replies[1][:8] and f"/{BUCKET}/raw.img".encode() in replies[1]
    assert b" 400 " in replies[2][:8] and b"<Resource>/</Resource>" in replies[2]
