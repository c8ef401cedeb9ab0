"""The server as a whole: readiness, SIGTERM/SIGINT behaviour, idle timeout, connection limit,
concurrent readers and writers."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import requests

from tests.support.diskserver import READY, start_server
from tests.support.rawhttp import Conn

SIZE = 8 << 20


def test_ready_line_means_serving(tmp_path, disk):
    s = start_server(["--disk", str(disk[0])], tmp_path)
    try:
        assert s.ready_line.endswith(READY)
        # The first request right after the line is served (no 503, no refused connection).
        r = requests.get(s.url, headers={"Range": "bytes=0-9"}, timeout=5)
        assert r.status_code == 206 and r.content == disk[1][:10]
    finally:
        assert s.stop(signal.SIGINT) == 0


def _start_big_put(s, length: int, sent: bytes) -> Conn:
    c = Conn(s.port, timeout=20)
    c.send(f"PUT / HTTP/1.1\r\nHost: x\r\nContent-Range: bytes 0-{length - 1}/*\r\n"
           f"Content-Length: {length}\r\n\r\n".encode() + sent)
    time.sleep(0.3)   # let the server start reading the body
    return c


def test_sigterm_during_large_put_incomplete_writes_nothing(tmp_path, disk):
    """The body never completes: after --shutdown-timeout the server exits 0, nothing written."""
    s = start_server(["--disk", str(disk[0]), "--shutdown-timeout", "1.5"], tmp_path)
    length = 6 << 20
    c = _start_big_put(s, length, os.urandom(2 << 20))
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(15) == 0
    elapsed = time.monotonic() - t0
    assert 1.0 < elapsed < 8, elapsed
    c.close()
    assert disk[0].read_bytes() == disk[1]


def test_sigterm_during_large_put_completes_it(tmp_path, disk):
    """A body that completes within the grace time is written in full and acknowledged."""
    s = start_server(["--disk", str(disk[0]), "--shutdown-timeout", "10"], tmp_path)
    length = 6 << 20
    data = os.urandom(length)
    c = _start_big_put(s, length, data[:2 << 20])
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # A new connection is refused while the in-flight PUT goes on.
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    c.send(data[2 << 20:])
    r = c.read_response()
    assert r.status == 200 and r.headers.get("connection") == "close"
    assert s.proc.wait(15) == 0
    assert refused
    assert disk[0].read_bytes()[:length] == data
    assert disk[0].read_bytes()[length:] == disk[1][length:]


def test_sigterm_with_idle_keepalive_connections_is_fast(tmp_path, disk):
    s = start_server(["--disk", str(disk[0])], tmp_path)
    conns = []
    for _ in range(3):
        c = Conn(s.port)
        c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response(head_only=True).status == 200
        conns.append(c)
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < 3
    assert all(c.is_closed(1) for c in conns)


def test_idle_timeout_and_connection_limit(tmp_path, disk):
    s = start_server(["--disk", str(disk[0]), "--timeout", "1", "--max-connections", "2"],
                     tmp_path)
    try:
        a, b = Conn(s.port), Conn(s.port)
        a.send(b"HEAD / HTTP/1.1\r\n\r\n")
        assert a.read_response(head_only=True).status == 200
        b.send(b"HEAD / HTTP/1.1\r\n\r\n")
        assert b.read_response(head_only=True).status == 200
        # A third connection over the limit gets 503 and is closed.
        third = Conn(s.port)
        third.send(b"HEAD / HTTP/1.1\r\n\r\n")
        r = third.read_response(head_only=True)
        assert r.status == 503
        # Idle connections are dropped after the timeout, freeing their slots.
        t0 = time.monotonic()
        assert a.is_closed(5) and b.is_closed(5)
        assert time.monotonic() - t0 < 4
        time.sleep(0.2)
        assert requests.head(s.url, timeout=5).status_code == 200
    finally:
        assert s.stop() == 0


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
