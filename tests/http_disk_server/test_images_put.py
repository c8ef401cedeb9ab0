"""PUT: Content-Length and chunked bodies, the offset from Content-Range, the whole-disk rule
without it, and refusals that write nothing (past the end, too large, cut short, stalled)."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
import requests

from tests.support.diskserver import start_server
from tests.support.rawhttp import Conn, chunked, put, put_head

SIZE = 8 << 20
LIMIT = 4 << 20  # the fixture's --max-put-size


def test_put_content_length(server, disk):
    data = os.urandom(65536)
    r = requests.put(server.url, data=data, timeout=5,
                     headers={"Content-Range": f"bytes 12345-{12345 + 65535}/{SIZE}"})
    assert r.status_code == 200
    expect = bytearray(disk[1])
    expect[12345:12345 + 65536] = data
    assert disk[0].read_bytes() == expect


def test_put_length_comes_from_body(server, disk):
    """nbdkit-curl claims one byte too many in Content-Range, with /-1 (S5): accepted."""
    data = os.urandom(4096)
    r = requests.put(server.url, data=data, timeout=5,
                     headers={"Content-Range": "bytes 8192-12288/-1"})
    assert r.status_code == 200
    got = disk[0].read_bytes()
    assert got[8192:12288] == data and got[12288] == disk[1][12288]


def test_put_flush_n_and_read_back(server, disk):
    data = os.urandom(4096)
    r = requests.put(server.url + "?flush=n", data=data, timeout=5,
                     headers={"Content-Range": "bytes 0-4095/*"})
    assert r.status_code == 200
    assert requests.get(server.url, headers={"Range": "bytes=0-4095"}, timeout=5).content == data
    r = requests.put(server.url + "?flush=maybe", data=data, timeout=5,
                     headers={"Content-Range": "bytes 0-4095/*"})
    assert r.status_code == 400


def test_put_chunked_with_extensions_and_trailers(server, disk):
    pieces = [os.urandom(n) for n in (1, 4095, 70000, 3)]
    body = chunked(*pieces, ext=True, trailers=b"X-Checksum: abc\r\nX-Other: 1\r\n")
    c = Conn(server.port)
    c.send(put_head(100000, None) + body)
    r = c.read_response()
    assert r.status == 200, r.body
    # The connection stays usable: the trailer and final CRLF were consumed.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=100000-100009\r\n\r\n")
    r2 = c.read_response()
    data = b"".join(pieces)
    assert r2.status == 206 and r2.body == data[:10]
    c.close()
    got = disk[0].read_bytes()
    assert got[100000:100000 + len(data)] == data
    assert got[:100000] == disk[1][:100000]
    assert got[100000 + len(data):] == disk[1][100000 + len(data):]


def test_put_chunked_from_requests_generator(server, disk):
    data = os.urandom(300000)

    def gen():
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    r = requests.put(server.url, data=gen(), timeout=5,
                     headers={"Content-Range": f"bytes 0-{len(data) - 1}/*"})
    assert r.status_code == 200
    assert disk[0].read_bytes()[:len(data)] == data


def test_put_past_end_writes_nothing(server, disk):
    for offset, n in [(SIZE - 4095, 4096), (SIZE, 1), (SIZE * 2, 512)]:
        r = requests.put(server.url, data=b"x" * n, timeout=5,
                         headers={"Content-Range": f"bytes {offset}-{offset + n - 1}/*"})
        assert r.status_code == 416
        assert r.headers["Content-Range"] == f"bytes */{SIZE}"
    # chunked: the length is only known at the end, the check still holds
    c = Conn(server.port)
    c.send(put_head(SIZE - 100, None) + chunked(b"y" * 101))
    assert c.read_response().status == 416
    c.close()
    assert os.path.getsize(disk[0]) == SIZE  # S4: the file did not grow
    assert disk[0].read_bytes() == disk[1]


def test_put_exactly_at_end_is_accepted(server, disk):
    r = requests.put(server.url, data=b"z" * 10, timeout=5,
                     headers={"Content-Range": f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"})
    assert r.status_code == 200
    assert disk[0].read_bytes()[-10:] == b"z" * 10


def test_oversized_put_is_413_and_writes_nothing(server, disk):
    # Declared length over the limit: refused before any body byte is read.
    c = Conn(server.port)
    c.send(put_head(0, LIMIT + 1))
    r = c.read_response()
    assert r.status == 413
    c.close()
    # Chunked body growing past the limit.
    c = Conn(server.port)
    c.send(put_head(0, None))
    piece = b"q" * (1 << 20)
    status = None
    try:
        for _ in range(6):
            c.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        status = c.read_response().status
    except ConnectionError:
        status = None
    c.close()
    assert status in (413, None)
    assert disk[0].read_bytes() == disk[1]


def test_truncated_bodies_write_nothing(server, disk):
    for body in [put_head(0, 65536) + b"a" * 1000,
                 put_head(0, None) + b"10000\r\n" + b"b" * 5000]:
        c = Conn(server.port)
        c.send(body)
        c.sock.shutdown(socket.SHUT_WR)     # the client has nothing more to send, and reads
        r = c.read_response()
        assert r.status == 400 and b"nothing written" in r.body
        assert r.headers["connection"] == "close"
        c.close()
    assert disk[0].read_bytes() == disk[1]


@pytest.mark.parametrize("chunked_body", [False, True])
def test_stalled_upload_is_408_and_writes_nothing(server, disk, chunked_body):
    """A client that stops sending mid-body is timed out (fixture --timeout 5)."""
    c = Conn(server.port, timeout=15)
    c.send(put_head(0, None) + b"10000\r\n" + b"c" * 100 if chunked_body
           else put_head(0, 65536) + b"c" * 100)
    t0 = time.monotonic()
    r = c.read_response()
    assert r.status == 408 and b"nothing written" in r.body
    assert r.headers["connection"] == "close"
    assert 4 < time.monotonic() - t0 < 10
    assert c.is_closed(timeout=5)
    c.close()
    assert disk[0].read_bytes() == disk[1]


# ---- without Content-Range: the whole disk or nothing ---------------------------------

@pytest.mark.parametrize("length", [100, 4096, SIZE - 1, 0])
def test_short_put_without_content_range_writes_nothing(server, disk, length):
    """A mistyped `curl -T small.img URL` must not overwrite the first bytes."""
    c = Conn(server.port)
    c.send(put(None, b"p" * length))
    r = c.read_response()
    assert r.status == 400 and b"whole disk" in r.body and b"nothing written" in r.body
    c.close()
    assert disk[0].read_bytes() == disk[1]


def test_short_chunked_put_without_content_range_writes_nothing(server, disk):
    c = Conn(server.port)
    c.send(put(None, b"q" * 100, chunked_body=True))
    assert c.read_response().status == 400
    c.close()
    assert disk[0].read_bytes() == disk[1]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB disk, so that a whole-disk PUT fits under the default --max-put-size."""
    p = tmp_path / "small.img"
    p.write_bytes(os.urandom(1 << 20))
    s = start_server(["--disk", str(p)], tmp_path, "small")
    yield s, p
    assert s.stop() == 0, s.log_text()


@pytest.mark.parametrize("chunked_body", [False, True])
def test_whole_disk_put_without_content_range(small_disk, chunked_body):
    s, p = small_disk
    data = os.urandom(1 << 20)
    c = Conn(s.port)
    c.send(put(None, data, chunked_body=chunked_body))
    assert c.read_response().status == 200
    c.close()
    assert p.read_bytes() == data


def test_whole_disk_put_with_curl_upload_file(small_disk, tmp_path):
    """`curl -T disk.img URL` (no Content-Range) replaces the disk when the sizes match."""
    s, p = small_disk
    src = tmp_path / "new.img"
    src.write_bytes(os.urandom(1 << 20))
    # (-T with a URL ending in / appends the file name: name the target explicitly.)
    out = subprocess.run(["curl", "-sS", "-f", "-T", str(src), "--request-target", "/", s.url],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert p.read_bytes() == src.read_bytes()
