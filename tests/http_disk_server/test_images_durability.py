"""Durability: every durable write path syncs the device before its reply, seen with strace
on the real server process (kill -9 keeps the page cache, so it cannot see a missing sync);
?flush=n does not sync, so the test tells the two apart. And kill -9 loses nothing."""

from __future__ import annotations

import os
import signal

import requests

from tests.support.diskserver import SyncTrace, start_server
from tests.support.rawhttp import Conn, patch, put

SIZE = 8 << 20

# (name, request, the syncs of the device it must make before its reply)
DURABLE_PATHS = [
    ("PUT (durable by default)", put(0, os.urandom(4096)), ["fdatasync"]),
    ("PUT ?flush=y", put(4096, os.urandom(4096), path="/?flush=y"), ["fdatasync"]),
    ("PUT ?flush=n", put(8192, os.urandom(4096), path="/?flush=n"), []),
    ("PATCH flush", patch({"op": "flush"}), ["fdatasync"]),
    ("PATCH zero, flush", patch({"op": "zero", "offset": 0, "size": 8192, "flush": True}),
     ["fdatasync"]),
    ("PATCH zero", patch({"op": "zero", "offset": 8192, "size": 4096}), []),
    ("PUT chunked", put(12288, os.urandom(70000), chunked_body=True), ["fdatasync"]),
]


def test_every_durable_path_syncs_before_its_reply(server, disk, tmp_path):
    with SyncTrace(server.pid, disk[0], tmp_path) as trace:
        c = Conn(server.port)
        for _, raw, _ in DURABLE_PATHS:
            c.send(raw)
            assert c.read_response().status == 200
        c.close()
        replies = trace.wait_replies(len(DURABLE_PATHS))
    assert len({r.tid for r in replies}) == 1           # one connection, one thread
    got = {name: r.syncs for (name, _, _), r in zip(DURABLE_PATHS, replies, strict=True)}
    assert got == {name: syncs for name, _, syncs in DURABLE_PATHS}


def test_flush_covers_unflushed_writes_of_another_connection(server, disk, tmp_path):
    """PATCH flush on one connection covers a ?flush=n PUT made on another (one shared
    descriptor): the sync happens in the flushing thread, before its reply."""
    with SyncTrace(server.pid, disk[0], tmp_path) as trace:
        a, b = Conn(server.port), Conn(server.port)
        a.send(put(0, b"u" * 4096, path="/?flush=n"))
        assert a.read_response().status == 200
        b.send(patch({"op": "flush"}))
        assert b.read_response().status == 200
        first, second = trace.wait_replies(2)
        a.close()
        b.close()
    assert first.syncs == [] and second.syncs == ["fdatasync"] and first.tid != second.tid


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
