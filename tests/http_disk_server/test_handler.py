"""The protocol layer: request parsing and its limits, framing rules (each repeated header
refused), methods, keep-alive and HTTP/1.0, TLS."""

from __future__ import annotations

import http.client
import os
import subprocess

import pytest
import requests

from tests.support.diskserver import start_server
from tests.support.rawhttp import Conn
from tests.support.rawhttp import request as raw_request

PASSWORD = "s3cret-Pa55-word-7f1c"
SIZE = 8 << 20


@pytest.fixture
def ro(shared):
    """The module's read-only server and its disk bytes."""
    return shared


@pytest.mark.parametrize("head,status", [
    (b"PUT / HTTP/1.1\r\nContent-Range: bytes 0-3/*\r\nContent-Length: abc\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nContent-Range: bytes 0-3/*\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nContent-Range: bytes 0-3/*\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nContent-Range: bytes 0-3/*\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nabcd\r\n0\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nContent-Range: bytes 0-3/*\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\nabcd\r\n0\r\n\r\n", 400),
    (b"PUT / HTTP/1.1\r\nContent-Range: bytes=0-3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"PUT / HTTP/1.1\r\nContent-Range: bytes 0-3/*\r\n\r\n", 411),
    (b"PUT /nope HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", 404),
    (b"DELETE / HTTP/1.1\r\n\r\n", 405),
    (b"BREW / HTTP/1.1\r\n\r\n", 405),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / HTTP/9.1\r\n\r\n", 505),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 70000 + b"\r\n\r\n", 431),
])
def test_malformed_requests(server, disk, head, status):
    r = raw_request(server.port, head)
    assert r.status == status, r.body
    if status == 405:
        assert "PUT" in r.headers["allow"] and "GET" in r.headers["allow"]
    # a one-line, plain reason
    assert r.body.count(b"\n") == 1 and not r.body.startswith(b"<")
    assert disk[0].read_bytes() == disk[1]


# ---- framing: headers that may appear only once (RFC 9112 section 6.3) ----------------

BODY = b"D" * 4096
DUPLICATES = {
    "Content-Length, different": ["Content-Length: 4096", "Content-Length: 10"],
    "Content-Length, equal": ["Content-Length: 4096", "Content-Length: 4096"],
    "Content-Range": ["Content-Length: 4096", "Content-Range: bytes 0-4095/*",
                      "Content-Range: bytes 8192-12287/*"],
    "Range": ["Content-Length: 4096", "Range: bytes=0-1", "Range: bytes=5-6"],
    "Transfer-Encoding": ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
    "Host": ["Content-Length: 4096", "Host: y"],
    "Write-Deadline": ["Content-Length: 4096", "Write-Deadline: 99999999999",
                       "Write-Deadline: 99999999999"],
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_repeated_framing_header_is_400_writes_nothing_and_closes(server, disk, case):
    name = case.split(",")[0]
    lines = ["PUT / HTTP/1.1", "Host: x", *DUPLICATES[case]]
    if not any(h.startswith("Content-Range") for h in lines):
        lines.append("Content-Range: bytes 0-4095/*")
    body = (b"1000\r\n" + BODY + b"\r\n0\r\n\r\n") if name == "Transfer-Encoding" else BODY
    c = Conn(server.port)
    c.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    r = c.read_response()
    assert r.status == 400, r.body
    assert name.encode() in r.body and b"more than once" in r.body
    assert r.body.count(b"\n") == 1
    assert r.headers["connection"] == "close"
    assert c.is_closed(timeout=5)
    c.close()
    assert disk[0].read_bytes() == disk[1]


def test_repeated_range_on_get_is_400(ro):
    r = raw_request(ro[0].port, b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n"
                    b"Range: bytes=0-1\r\n\r\n")
    assert r.status == 400 and b"Range" in r.body


def test_headers_that_may_repeat_still_work(ro):
    """Only framing and target headers are singular: repeated others are fine."""
    r = raw_request(ro[0].port, b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n"
                    b"Accept: */*\r\nAccept: text/plain\r\nX-Trace: 1\r\nX-Trace: 2\r\n\r\n")
    assert r.status == 206 and r.body == ro[1][:4]


def test_unknown_method_on_a_read_only_server(ro):
    r = raw_request(ro[0].port, b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"OPTIONS", "GET", "HEAD"}


def test_method_not_on_resource(ro):
    r = raw_request(ro[0].port, b"PUT /extents HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert r.status == 405 and r.headers["allow"] == "OPTIONS, GET, HEAD"


def test_request_line_limits(ro):
    """8 KiB is the cap: one byte under it is parsed (404), over it is 414."""
    head = b"GET /" + b"a" * (8192 - len(b"GET / HTTP/1.1\r\n") - 1) + b" HTTP/1.1\r\n"
    assert len(head) == 8191
    assert raw_request(ro[0].port, head + b"\r\n").status == 404
    long = b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"
    assert raw_request(ro[0].port, long).status == 414


def test_http09_is_refused(ro):
    c = Conn(ro[0].port)
    c.send(b"GET /\r\n\r\n")      # CPython reads (empty) headers even for 0.9
    r = c.read_response()
    assert r.status == 400 and b"HTTP/0.9" in r.body
    c.close()


def test_curl_reuses_one_connection(ro):
    urls = [ro[0].url] * 3
    out = subprocess.run(["curl", "-sS", "-v", "-f", "-r", "0-1023", "-o", "/dev/null",
                          "-o", "/dev/null", "-o", "/dev/null", *urls],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("Re-using existing connection") == 2


def test_keep_alive_many_requests(ro):
    conn = http.client.HTTPConnection("127.0.0.1", ro[0].port, timeout=5)
    conn.connect()
    sock = conn.sock
    for i in range(50):
        off = i * 65536
        conn.request("GET", "/", headers={"Range": f"bytes={off}-{off + 4095}"})
        r = conn.getresponse()
        assert r.status == 206 and r.read() == ro[1][off:off + 4096]
    assert conn.sock is sock  # never reconnected
    conn.close()


def test_http10_request_gets_answer_and_close(ro):
    r = raw_request(ro[0].port, b"GET / HTTP/1.0\r\nRange: bytes=5-9\r\n\r\n")
    assert r.status == 206 and r.body == ro[1][5:10]


def test_tls(tmp_path, disk, cert):
    crt, key = cert
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    s = start_server(["--disk", str(disk[0]), "--tls-cert", str(crt), "--tls-key", str(key),
                      "--user", "u", "--password-file", str(pw)], tmp_path)
    try:
        assert s.url.startswith("https://") and "https://" in s.ready_line
        with requests.Session() as sess:
            # verify per request: a session-level verify loses to REQUESTS_CA_BUNDLE
            sess.auth = ("u", PASSWORD)
            v = str(crt)
            # large ranges go through the pread path (sendfile would bypass TLS)
            r = sess.get(s.url, headers={"Range": "bytes=1000-3000999"}, timeout=10, verify=v)
            assert r.status_code == 206 and r.content == disk[1][1000:3001000]
            r = sess.get(s.url, timeout=10, verify=v)
            assert r.content == disk[1]
            data = os.urandom(70000)
            r = sess.put(s.url, data=data, headers={"Content-Range": "bytes 5-70004/*"},
                         timeout=10, verify=v)
            assert r.status_code == 200
            assert sess.get(s.url, headers={"Range": "bytes=5-70004"}, timeout=5,
                            verify=v).content == data
            assert sess.get(s.url, auth=("u", "bad"), timeout=5, verify=v).status_code == 401
        out = subprocess.run(["curl", "-sS", "-f", "--cacert", str(crt), "-u", f"u:{PASSWORD}",
                              "-r", "0-99", s.url], capture_output=True, timeout=20)
        assert out.returncode == 0 and out.stdout == disk[1][:5] + data[:95]
        # Without trusting the certificate the client refuses; plain HTTP gets nothing useful.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(s.url, timeout=5)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(s.url.replace("https", "http"), timeout=5)
        # The server still serves after those failed handshakes.
        r = requests.head(s.url, verify=str(crt), auth=("u", PASSWORD), timeout=5)
        assert r.status_code == 200
    finally:
        assert s.stop() == 0, s.log_text()
