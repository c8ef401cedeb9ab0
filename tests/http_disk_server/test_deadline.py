"""Write-Deadline: a write that is stale when the server is about to apply
it writes nothing and gets 412, including one that sat in the socket buffer of a server
stopped with SIGSTOP, and one whose client hung up meanwhile."""

from __future__ import annotations

import os
import signal
import socket
import struct
import time

import pytest
import requests

from http_disk_server.deadline import StaleWrite, check, parse_deadline, peer_closed
from tests.support.diskserver import freeze, wait_for_log
from tests.support.rawhttp import Conn, patch, put

SIZE = 8 << 20


def deadline_header(value: str | None) -> list[str]:
    return [] if value is None else [f"Write-Deadline: {value}"]


def put_request(offset: int, data: bytes, deadline: str | None) -> bytes:
    return put(offset, data, *deadline_header(deadline))


def zero_request(offset: int, size: int, deadline: str | None, op: str = "zero") -> bytes:
    obj = {"op": "zero", "offset": offset, "size": size, "flush": True} if op == "zero" \
        else {"op": op}
    return patch(obj, *deadline_header(deadline))


def wait_for_warnings(server, count: int) -> list[str]:
    """The warning lines of refused stale writes ("... WARNING: PUT / HTTP/1.1: 412 ...")."""
    return wait_for_log(server, ": 412 write deadline", count)


def test_options_lists_the_feature(server):
    assert "write_deadline" in requests.options(server.url, timeout=5).json()["features"]


def test_future_deadline_writes(server, disk):
    data = os.urandom(4096)
    c = Conn(server.port)
    c.send(put_request(4096, data, f"{time.time() + 30:.3f}"))
    assert c.read_response().status == 200
    c.close()
    assert disk[0].read_bytes()[4096:8192] == data


def test_passed_deadline_writes_nothing(server, disk):
    c = Conn(server.port)
    c.send(put_request(0, b"s" * 4096, f"{time.time() - 0.5:.3f}"))
    r = c.read_response()
    assert r.status == 412
    assert r.body.count(b"\n") == 1 and b"deadline passed" in r.body
    assert b"nothing written" in r.body
    # The body was read in full: the connection stays usable.
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response(head_only=True).status == 200
    c.close()
    assert disk[0].read_bytes() == disk[1]
    assert len(wait_for_warnings(server, 1)) == 1


@pytest.mark.parametrize("value", ["abc", "1e12", "-5", "+5", "inf", "nan", "1.2.3", "0x10",
                                   "", "17647488001764748800", "1764748800.", "1 2"])
def test_malformed_deadline_is_400(server, disk, value):
    c = Conn(server.port)
    c.send(put_request(0, b"m" * 100, value))
    r = c.read_response()
    assert r.status == 400 and b"Write-Deadline" in r.body
    c.close()
    c = Conn(server.port)
    c.send(zero_request(0, 4096, value))
    r = c.read_response()
    assert r.status == 400 and b"Write-Deadline" in r.body
    c.close()
    assert disk[0].read_bytes() == disk[1]


def test_patch_zero_passed_deadline_zeroes_nothing(server, disk):
    c = Conn(server.port)
    c.send(zero_request(0, 65536, f"{time.time() - 1:.3f}"))
    assert c.read_response().status == 412
    c.send(zero_request(0, 65536, f"{time.time() + 30:.3f}"))
    assert c.read_response().status == 200
    c.close()
    assert disk[0].read_bytes() == bytes(65536) + disk[1][65536:]


@pytest.mark.parametrize("value", [None, "1", "not a number"])
def test_patch_flush_ignores_the_header(server, value):
    c = Conn(server.port)
    c.send(zero_request(0, 0, value, op="flush"))
    assert c.read_response().status == 200
    c.close()


def _stop_send_resume(server, request: bytes, wait_until: float | None,
                      hang_up: bool) -> Conn:
    """Send ``request`` on a connection the server has accepted while the server is
    stopped, wait (while it is stopped) until the wall clock passes ``wait_until``,
    optionally hang up, then let the server run again."""
    c = Conn(server.port, timeout=15)
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")   # the handler thread is now reading
    assert c.read_response(head_only=True).status == 200
    freeze(server.pid)                              # every thread stopped, for sure
    try:
        c.send(request)                              # lands in the socket buffer, unread
        if wait_until is not None:
            while time.time() <= wait_until:
                time.sleep(wait_until - time.time() + 0.01)
        if hang_up:
            c.close()
    finally:
        server.send_signal(signal.SIGCONT)
    return c


def test_put_stale_in_socket_buffer_of_stopped_server(server, disk):
    """The stalled-replica case: the PUT is complete in the buffer, but its deadline passes
    while the server is stopped; once resumed, it must not be applied."""
    deadline = time.time() + 0.5
    c = _stop_send_resume(server, put_request(0, b"2" * 4096, f"{deadline:.3f}"),
                          wait_until=deadline, hang_up=False)
    r = c.read_response()
    c.close()
    assert r.status == 412 and b"deadline passed" in r.body
    assert disk[0].read_bytes() == disk[1]
    assert len(wait_for_warnings(server, 1)) == 1


def test_put_in_socket_buffer_of_stopped_server_applies_in_time(server, disk):
    """The control: the same sequence with a deadline still ahead writes normally."""
    data = os.urandom(4096)
    c = _stop_send_resume(server, put_request(0, data, f"{time.time() + 60:.3f}"),
                          wait_until=None, hang_up=False)
    assert c.read_response().status == 200
    c.close()
    assert disk[0].read_bytes()[:4096] == data


def test_put_whose_client_hung_up_writes_nothing(server, disk):
    """Deadline still ahead, but the client closed the connection while the server was
    stopped: nobody waits for the reply, so the write is not applied."""
    _stop_send_resume(server, put_request(0, b"h" * 4096, f"{time.time() + 60:.3f}"),
                      wait_until=None, hang_up=True)
    lines = wait_for_warnings(server, 1)
    assert "closed the connection" in lines[0]
    assert disk[0].read_bytes() == disk[1]


def test_patch_zero_stale_in_socket_buffer_of_stopped_server(server, disk):
    deadline = time.time() + 0.5
    c = _stop_send_resume(server, zero_request(0, 65536, f"{deadline:.3f}"),
                          wait_until=deadline, hang_up=False)
    assert c.read_response().status == 412
    c.close()
    assert disk[0].read_bytes() == disk[1]


# ---- the pieces, in process --------------------------------------------------------

@pytest.mark.parametrize("value,expected", [(None, None), ("1764748800", 1764748800.0),
                                            (" 1764748800.250 ", 1764748800.25), ("0", 0.0)])
def test_parse_deadline(value, expected):
    assert parse_deadline(value) == expected


def test_peer_closed_never_blocks_and_sees_fin_and_rst():
    a, b = socket.socketpair()
    a.settimeout(30)                       # a blocking peek would hang here
    t0 = time.monotonic()
    assert peer_closed(a) is False         # nothing to read
    b.sendall(b"x")
    assert peer_closed(a) is False         # data, not EOF
    assert a.recv(1) == b"x"               # the peek consumed nothing
    b.close()
    assert peer_closed(a) is True
    assert time.monotonic() - t0 < 1
    a.close()
    srv = socket.create_server(("127.0.0.1", 0))
    cl = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    cl.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cl.close()                             # RST
    deadline = time.monotonic() + 5
    while not peer_closed(conn) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert peer_closed(conn) is True
    conn.close()
    srv.close()


def test_check_raises_one_line_reasons():
    a, b = socket.socketpair()
    check(None, a, now=100.0)               # no header: never stale
    check(100.0, a, now=99.0)               # in time, client there
    with pytest.raises(StaleWrite) as exc:
        check(100.0, a, now=100.5)
    assert "\n" not in str(exc.value) and "nothing written" in str(exc.value)
    b.close()
    with pytest.raises(StaleWrite, match="closed"):
        check(100.0, a, now=99.0)
    a.close()
