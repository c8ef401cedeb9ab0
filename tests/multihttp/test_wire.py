"""multihttp.wire.Connection: the request deadline, kept with few socket timeout changes.

A socket pair stands in for the server; its side is written by a thread of the test.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from multihttp.wire import ARM_SLACK, Connection


class CountingSocket(socket.socket):
    """A socket that counts settimeout() calls (each one an ioctl without the GIL)."""

    settimeouts = 0

    def settimeout(self, value):
        CountingSocket.settimeouts += 1
        super().settimeout(value)


def _pair(budget: float) -> tuple[Connection, socket.socket]:
    a, b = socket.socketpair()
    sock = CountingSocket(fileno=a.detach())
    CountingSocket.settimeouts = 0
    return Connection(sock, "127.0.0.1:1", budget), b


def _serve(peer: socket.socket, pieces: list[bytes], pause: float) -> threading.Thread:
    def run() -> None:
        peer.recv(65536)                           # the request
        for p in pieces:
            try:
                peer.sendall(p)
            except OSError:
                return
            time.sleep(pause)
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_one_timeout_change_serves_a_whole_quick_reply():
    conn, peer = _pair(10.0)
    body = bytes(range(256)) * 4096
    head = b"HTTP/1.1 206 Partial Content\r\n" + b"".join(
        b"X-H%d: %d\r\n" % (i, i) for i in range(60)) + \
        b"Content-Length: %d\r\n\r\n" % len(body)
    th = _serve(peer, [head, body[:300_000], body[300_000:]], 0)
    conn.send("GET", "/x", {"Range": "bytes=0-1"})
    resp = conn.response("GET")
    assert resp.status == 206 and resp.length == len(body)
    buf = bytearray(len(body))
    assert conn.readinto_all(memoryview(buf)) == len(body) and buf == body
    th.join(5)
    # 62 header lines and a body in several recvs: one timeout per ARM_SLACK, not per call.
    assert CountingSocket.settimeouts <= 3, CountingSocket.settimeouts
    conn.close()
    peer.close()


@pytest.mark.parametrize("pause", [0.002, 0.05])
def test_a_trickling_reply_still_ends_at_the_deadline(pause):
    conn, peer = _pair(0.4)
    head = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100000\r\n\r\n"
    th = _serve(peer, [head] + [b"x"] * 1000, pause)
    t0 = time.monotonic()
    conn.send("GET", "/x", {})
    with pytest.raises(TimeoutError):
        resp = conn.response("GET")
        conn.readinto_all(memoryview(bytearray(resp.length)))
    took = time.monotonic() - t0
    assert 0.35 < took < 0.4 + ARM_SLACK + 0.1, took
    conn.close()
    peer.close()
    th.join(5)
