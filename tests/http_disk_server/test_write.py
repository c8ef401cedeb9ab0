"""PUT (Content-Length, chunked, Expect), PATCH zero/flush, refusals that write nothing."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
import requests

from tests.support.diskserver import start_server
from tests.support.rawhttp import Conn, chunked
from tests.support.rawhttp import request as raw_request

SIZE = 8 << 20
LIMIT = 4 << 20  # the fixture's --max-put-size


def put_head(offset: int, length: int | None, extra: str = "", path: str = "/") -> bytes:
    h = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Range: bytes {offset}-*/*\r\n"
    h = f"PUT {path} HTTP/1.1\r\nHost: x\r\n"
    if length is not None:
        h += f"Content-Range: bytes {offset}-{offset + max(length, 1) - 1}/*\r\n"
        h += f"Content-Length: {length}\r\n"
    else:
        h += f"Content-Range: bytes {offset}-{offset}/*\r\nTransfer-Encoding: chunked\r\n"
    return (h + extra + "\r\n").encode()


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
    import socket
    for body in [put_head(0, 65536) + b"a" * 1000,
                 put_head(0, None) + b"10000\r\n" + b"b" * 5000]:
        c = Conn(server.port)
        c.send(body)
        c.sock.shutdown(socket.SHUT_WR)
        try:
            r = c.read_response()
            assert r.status == 400 and b"nothing written" in r.body
        except ConnectionError:
            pass
        c.close()
    # A client that stops sending mid-body is timed out (fixture --timeout 5).
    c = Conn(server.port, timeout=15)
    c.send(put_head(0, 65536) + b"c" * 100)
    t0 = time.monotonic()
    assert c.is_closed(timeout=12)
    assert time.monotonic() - t0 < 10
    c.close()
    assert disk[0].read_bytes() == disk[1]


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


def test_small_refused_put_keeps_connection(server, disk):
    c = Conn(server.port)
    c.send(put_head(SIZE, 100) + b"x" * 100)
    assert c.read_response().status == 416
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response(head_only=True)
    assert r.status == 200 and r.headers["content-length"] == str(SIZE)
    c.close()


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


def test_extents_on_sparse_file(tmp_path):
    p = tmp_path / "sparse.img"
    size = 16 << 20
    with open(p, "wb") as f:
        f.truncate(size)
        f.seek(1 << 20)
        f.write(b"d" * (1 << 20))
        f.seek(10 << 20)
        f.write(b"e" * 4096)
    s = start_server(["--disk", str(p), "--read-only"], tmp_path)
    try:
        ext = requests.get(s.url + "extents", timeout=5).json()
    finally:
        assert s.stop() == 0
    # contiguous cover of the file
    pos = 0
    for e in ext:
        assert e["start"] == pos and e["length"] > 0
        pos += e["length"]
    assert pos == size
    data = p.read_bytes()
    for e in ext:
        chunk = data[e["start"]:e["start"] + e["length"]]
        if e["zero"]:
            assert e["hole"] and chunk.count(0) == len(chunk)
    data_ranges = [(e["start"], e["length"]) for e in ext if not e["zero"]]
    covered = set()
    for start, length in data_ranges:
        covered.update(range(start // 4096, (start + length) // 4096))
    assert (1 << 20) // 4096 in covered and (10 << 20) // 4096 in covered
    assert 0 not in covered and (5 << 20) // 4096 not in covered


def test_concurrent_readers_and_writers(server, disk):
    """Writers on distinct ranges and readers at once: every byte lands where it should."""
    blocks = 64
    bs = 64 << 10
    new = {i: os.urandom(bs) for i in range(0, blocks, 2)}   # even blocks rewritten
    errors: list[str] = []

    def writer(ids):
        with requests.Session() as s:
            for i in ids:
                r = s.put(server.url + "?flush=n", data=new[i], timeout=10,
                          headers={"Content-Range": f"bytes {i * bs}-{(i + 1) * bs - 1}/*"})
                if r.status_code != 200:
                    errors.append(f"PUT {i}: {r.status_code}")

    def reader(ids):
        with requests.Session() as s:
            for _ in range(3):
                for i in ids:   # odd blocks are never written: always the original bytes
                    r = s.get(server.url, timeout=10,
                              headers={"Range": f"bytes={i * bs}-{(i + 1) * bs - 1}"})
                    if r.content != disk[1][i * bs:(i + 1) * bs]:
                        errors.append(f"GET {i}: wrong bytes")

    evens = sorted(new)
    odds = list(range(1, blocks, 2))
    threads = [threading.Thread(target=writer, args=(evens[k::4],)) for k in range(4)]
    threads += [threading.Thread(target=reader, args=(odds[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert requests.patch(server.url, json={"op": "flush"}, timeout=5).status_code == 200
    expect = bytearray(disk[1])
    for i, b in new.items():
        expect[i * bs:(i + 1) * bs] = b
    assert disk[0].read_bytes() == expect
