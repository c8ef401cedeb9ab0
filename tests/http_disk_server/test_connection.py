"""Connection plumbing: 100-continue sent only for accepted requests, refused bodies drained
(keep-alive kept) or lingered over (connection closed without losing the reply)."""

from __future__ import annotations

import io
import os
import subprocess
import time
from email.message import Message

import pytest

from http_disk_server.connection import MAX_DRAIN, drain_body, expects_continue
from tests.support.rawhttp import Conn, put_head

SIZE = 8 << 20


def test_expect_100_continue_does_not_stall(server, disk, tmp_path):
    src = tmp_path / "block"
    src.write_bytes(os.urandom(4096))
    t0 = time.monotonic()
    for i in range(5):
        out = subprocess.run(
            ["curl", "-sS", "-f", "-X", "PUT", "--data-binary", f"@{src}",
             "-H", "Expect: 100-continue",
             "-H", f"Content-Range: bytes {i * 4096}-{i * 4096 + 4095}/*", server.url],
            capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr
    # curl waits 1 s for "100 Continue" before sending anyway (the old server's stall);
    # five PUTs well under 5 s prove the server answers the expectation.
    assert time.monotonic() - t0 < 2.5
    assert disk[0].read_bytes()[:4096] == src.read_bytes()


def test_expect_100_continue_raw_and_chunked_curl(server, disk, tmp_path):
    c = Conn(server.port)
    c.send(put_head(4096, 4096, "Expect: 100-continue\r\n"))
    status, _ = c.read_head()          # must arrive before we send the body
    assert status == 100
    data = os.urandom(4096)
    c.send(data)
    assert c.read_response().status == 200
    c.close()
    assert disk[0].read_bytes()[4096:8192] == data
    # curl with a chunked upload from stdin: Transfer-Encoding chunked plus Expect.
    data2 = os.urandom(10000)
    t0 = time.monotonic()
    # (-T with a URL ending in / would append the file name "-".)
    out = subprocess.run(["curl", "-sS", "-f", "-T", "-", "-H", "Expect: 100-continue",
                          "-H", "Content-Range: bytes 50000-59999/*", server.url + "?"],
                         input=data2, capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 0.9
    assert disk[0].read_bytes()[50000:60000] == data2


def test_refused_expect_gets_no_continue(server, disk):
    c = Conn(server.port)
    c.send(put_head(SIZE - 10, 4096, "Expect: 100-continue\r\n"))
    status, headers = c.read_head()
    assert status == 416 and headers["content-range"] == f"bytes */{SIZE}"
    c.close()
    assert disk[0].read_bytes() == disk[1]


def test_small_refused_put_keeps_connection(server, disk):
    c = Conn(server.port)
    c.send(put_head(SIZE, 100) + b"x" * 100)
    assert c.read_response().status == 416
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response(head_only=True)
    assert r.status == 200 and r.headers["content-length"] == str(SIZE)
    c.close()



def test_large_refused_body_closes_without_losing_the_reply(server, disk):
    """A refused PUT whose body is too large to drop: the 416 arrives, then the server
    closes (after draining, so no RST destroys the reply)."""
    c = Conn(server.port)
    c.send(put_head(SIZE - 10, MAX_DRAIN + 4096) + os.urandom(MAX_DRAIN + 4096))
    r = c.read_response()
    assert r.status == 416
    assert c.is_closed(timeout=5)
    c.close()
    assert disk[0].read_bytes() == disk[1]


def headers(**fields: str) -> Message:
    m = Message()
    for k, v in fields.items():
        m[k.replace("_", "-")] = v
    return m


@pytest.mark.parametrize("fields,body,usable,left", [
    ({}, b"NEXT", True, b"NEXT"),                                        # no body
    ({"Content_Length": "4"}, b"abcdNEXT", True, b"NEXT"),                # small: dropped
    ({"Content_Length": str(MAX_DRAIN + 1)}, b"x" * 10, False, None),    # too large
    ({"Transfer_Encoding": "chunked"}, b"0\r\n\r\n", False, None),      # not delimited here
    ({"Content_Length": "4", "Expect": "100-continue"}, b"", False, None),  # never sent
    ({"Content_Length": "10"}, b"abc", False, None),                      # client went away
])
def test_drain_body(fields, body, usable, left):
    rfile = io.BufferedReader(io.BytesIO(body))
    assert drain_body(rfile, headers(**fields), "HTTP/1.1") is usable
    if left is not None:
        assert rfile.read() == left


def test_expects_continue_only_from_http11():
    h = headers(Expect="100-Continue")
    assert expects_continue(h, "HTTP/1.1") and not expects_continue(h, "HTTP/1.0")
    assert not expects_continue(headers(), "HTTP/1.1")
