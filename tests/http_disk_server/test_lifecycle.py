"""Readiness, busy port, defaults, durability across kill -9, SIGTERM/SIGINT behaviour, limits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests

from tests.support.diskserver import READY, REPO, launch, start_server, wait_ready
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


def test_default_bind_is_loopback(tmp_path, disk):
    p = launch(["--disk", str(disk[0]), "--port", "0"], tmp_path)
    try:
        line = wait_ready(p)
        assert "//127.0.0.1:" in line
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0


def test_busy_port(tmp_path, disk):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        p = launch(["--disk", str(disk[0]), "--port", str(port)], tmp_path, "busy")
        assert p.wait(10) == 1
        assert p.stdout.read() == b""          # never claimed readiness
        err = (tmp_path / "busy.stderr").read_text().strip()
        assert len(err.splitlines()) == 1 and "already in use" in err and str(port) in err
    finally:
        blocker.close()


def test_missing_device_is_one_line_error(tmp_path):
    p = launch(["--disk", str(tmp_path / "nope.img"), "--port", "0"], tmp_path, "bad")
    assert p.wait(10) == 1
    err = (tmp_path / "bad.stderr").read_text().strip()
    assert len(err.splitlines()) == 1 and "nope.img" in err


def test_acknowledged_writes_survive_kill_9(tmp_path, disk):
    s = start_server(["--disk", str(disk[0])], tmp_path)
    expect = bytearray(disk[1])
    with requests.Session() as sess:
        for i in range(16):   # durable PUTs
            off = i * 300007
            data = os.urandom(8192)
            assert sess.put(s.url, data=data, timeout=5,
                            headers={"Content-Range": f"bytes {off}-{off + 8191}/*"}
                            ).status_code == 200
            expect[off:off + 8192] = data
        for i in range(8):    # unflushed PUTs made durable by one PATCH flush
            off = SIZE - (i + 1) * 65536
            data = os.urandom(4096)
            assert sess.put(s.url + "?flush=n", data=data, timeout=5,
                            headers={"Content-Range": f"bytes {off}-{off + 4095}/*"}
                            ).status_code == 200
            expect[off:off + 4096] = data
        assert sess.patch(s.url, json={"op": "flush"}, timeout=5).status_code == 200
        assert sess.patch(s.url, json={"op": "zero", "offset": 4096, "size": 4096,
                                       "flush": True}, timeout=5).status_code == 200
        expect[4096:8192] = bytes(4096)
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL
    assert disk[0].read_bytes() == expect


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


def test_entry_points(tmp_path, disk):
    """The installed console script and the source-tree wrapper both start the server."""
    bindir = os.path.dirname(sys.executable)
    for name, cmd in [("console", [os.path.join(bindir, "http-disk-server")]),
                      ("wrapper", [sys.executable, str(REPO / "scripts" / "http-disk-server")])]:
        err = open(tmp_path / f"{name}.stderr", "wb")
        p = subprocess.Popen([*cmd, "--disk", str(disk[0]), "--port", "0", "--read-only"],
                             stdout=subprocess.PIPE, stderr=err)
        try:
            line = wait_ready(p)
            port = int(line.split(":")[-1].split("/")[0])
            r = requests.get(f"http://127.0.0.1:{port}/", headers={"Range": "bytes=0-3"},
                             timeout=5)
            assert r.content == disk[1][:4]
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(15) == 0
