"""runner.Runner on its own, as a new owner would compose it: its own attempt and its own
verify, over real servers (the multihttp client and hxz's HttpSource are two such owners)."""

from __future__ import annotations

import errno

import pytest

from multihttp import request
from multihttp.errors import FinalError
from multihttp.params import Params, apply
from multihttp.pool import Pool
from multihttp.runner import AllServersFailed, Runner
from multihttp.server import Endpoint, Server
from multihttp.wire import Connection
from tests.multihttp.conftest import make_disk


def runner_over(urls: list[str], log: list[str]) -> tuple[Runner, list[int]]:
    p = Params()
    for k, v in [("urls", ",".join(urls)), ("retries", "1"), ("retry-delay", "0.01"),
                 ("timeout", "2"), ("connect-timeout", "2")]:
        apply(p, k, v)
    verified: list[int] = []

    def verify(s: Server, conn: Connection) -> bool:
        verified.append(s.index)
        return True
    r = Runner(p, verify, log.append)
    r.servers = [Server(i, Pool(u, p, None), Endpoint(u.path, None, u.label))
                 for i, u in enumerate(p.urls)]
    return r, verified


def read_head(conn: Connection, s: Server, n: int) -> tuple[int, bytes]:
    buf = bytearray(n)
    request.get_range(conn, s.endpoint, memoryview(buf), 0, None)
    return s.index, bytes(buf)


def test_runner_fails_over_verifies_and_hands_back_the_result(tmp_path, fake):
    path = tmp_path / "disk.img"
    data = make_disk(path, 1 << 20, seed=5)
    a, b = fake(path), fake(path)
    log: list[str] = []
    r, verified = runner_over([a.url, b.url], log)

    s, result = r.run("read", read_head, 4096)
    assert (s.index, result) == (0, (0, data[:4096]))
    assert verified == [0]

    # The first server fails: its retry runs on a fresh connection, verified again;
    # then the same request completes on the second server, which is verified before
    # it is trusted and becomes current.
    a.mode = "5xx"
    s, result = r.run(("read", 4096, 0), read_head, 4096)
    assert result == (1, data[:4096]) and r.current == 1
    assert verified == [0, 0, 1]
    assert any("failed over to " + b.url in m for m in log), log
    assert any("read 4096@0: attempt 1 failed" in m for m in log), log

    # Later requests start on the current server (no request reaches the first one).
    a.mode = "ok"
    seen = len(a.requests)
    assert r.run("read", read_head, 100)[1] == (1, data[:100])
    assert len(a.requests) == seen and verified == [0, 0, 1]


def test_runner_final_error_is_not_failed_over(tmp_path, fake):
    path = tmp_path / "disk.img"
    make_disk(path, 1 << 20, seed=6)
    a, b = fake(path), fake(path)
    r, _ = runner_over([a.url, b.url], [])
    tried: list[int] = []

    def refused(conn: Connection, s: Server) -> None:
        tried.append(s.index)
        raise FinalError(f"{s.label}: refused", errno.EROFS)
    with pytest.raises(FinalError) as ei:
        r.run("write", refused)
    assert ei.value.errno == errno.EROFS and tried == [0]


def test_runner_every_server_failed_lists_each(tmp_path, fake):
    path = tmp_path / "disk.img"
    make_disk(path, 1 << 20, seed=7)
    a, b = fake(path), fake(path)
    a.mode = b.mode = "5xx"
    r, _ = runner_over([a.url, b.url], [])
    with pytest.raises(AllServersFailed) as ei:
        r.run(("read", 4096, 0), read_head, 4096)
    assert ei.value.errno == errno.EIO
    assert len(ei.value.failures) == 2
    assert a.url in ei.value.failures[0] and b.url in ei.value.failures[1]
    assert str(ei.value).startswith("read 4096@0: every server failed: ")
