"""DRBD: EROFS at open while a peer is Primary -> 503 and a logged reason, retry, then serve.

Fakes cannot reach a child process, so these tests run the server in-process with an
injected open()/stat() and drbdsetup faked by pytest-subprocess.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import threading
import time

import pytest
import requests

from http_disk_server.config import Config
from http_disk_server.drbd import (
    DRBD_MAJOR,
    System,
    primary_peers,
    resource_of,
    why_not_writable,
)
from http_disk_server.service import DiskService
from tests.http_disk_server.test_metrics import scrape

DEV = "/dev/drbd/by-res/vol1/0"
MINOR = 1000


def drbd_status(peer_role: str = "Primary", name: str = "vol1") -> str:
    return json.dumps([{
        "name": name, "node-id": 0, "role": "Secondary", "suspended": False,
        "devices": [{"volume": 0, "minor": MINOR, "disk-state": "UpToDate"}],
        "connections": [
            {"peer-node-id": 1, "name": "host-b", "connection-state": "Connected",
             "peer-role": peer_role},
            {"peer-node-id": 2, "name": "host-c", "connection-state": "Connected",
             "peer-role": "Secondary"},
        ],
    }])


class FakeStat:
    st_mode = stat.S_IFBLK | 0o660
    st_rdev = os.makedev(DRBD_MAJOR, MINOR)


class FlakyOpener:
    """Fails with ``err`` until ``allow`` is set, then opens the real backing file."""

    def __init__(self, real: str, err: int = errno.EROFS) -> None:
        self.real = real
        self.err = err
        self.allow = threading.Event()
        self.attempts = 0

    def __call__(self, path: str, flags: int) -> int:
        assert path == DEV
        self.attempts += 1
        if not self.allow.is_set():
            raise OSError(self.err, os.strerror(self.err), path)
        return os.open(self.real, flags)


@pytest.fixture
def backing(tmp_path):
    data = os.urandom(1 << 20)
    p = tmp_path / "backing.img"
    p.write_bytes(data)
    return str(p), data


def make_service(opener, stat_fn=lambda p: FakeStat(), interval: float = 0.2) -> DiskService:
    system = System(open=opener, stat=stat_fn)   # drbdsetup: pytest-subprocess's fake
    return DiskService(Config(timeout=5, shutdown_timeout=2), "127.0.0.1", 0, disk=DEV,
                       system=system, drbd_interval=interval)


@pytest.mark.parametrize("err", [errno.EROFS, errno.EMEDIUMTYPE])
def test_waits_for_primary_then_serves(fake_process, backing, caplog, err):
    fake_process.register(["drbdsetup", "status", "vol1", "--json"], stdout=drbd_status(),
                          occurrences=1000)
    opener = FlakyOpener(backing[0], err)
    svc = make_service(opener)
    caplog.set_level(logging.WARNING, logger="http_disk_server")
    assert svc.open() is False          # not open, but the server is up
    svc.serve_in_thread()
    try:
        url = svc.url
        r = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=5)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert "host-b" in r.text
        info = requests.get(url + "info", timeout=5).json()
        assert info["ready"] is False and "Primary on host-b" in info["reason"]
        assert any("Primary on host-b" in m for m in caplog.messages)
        assert sum("Primary on host-b" in m for m in caplog.messages) == 1  # no log spam
        assert scrape(url)[("http_disk_server_drbd_waiting", ())] == 1
        # No spinning: about one attempt per interval.
        before = opener.attempts
        time.sleep(1.0)
        assert 2 <= opener.attempts - before <= 8
        assert fake_process.call_count(["drbdsetup", "status", "vol1", "--json"]) >= 2
        opener.allow.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=5)
            if r.status_code != 503:
                break
            time.sleep(0.05)
        assert r.status_code == 206 and r.content == backing[1][:10]
        assert scrape(url)[("http_disk_server_drbd_waiting", ())] == 0
        attempts = opener.attempts
        time.sleep(0.5)
        assert opener.attempts == attempts      # the retry loop ended
        r = requests.put(url, data=b"w" * 10, headers={"Content-Range": "bytes 0-9/*"},
                         timeout=5)
        assert r.status_code == 200
    finally:
        svc.stop()
    with open(backing[0], "rb") as f:
        assert f.read(10) == b"w" * 10


def test_stop_while_waiting(fake_process, backing):
    fake_process.register(["drbdsetup", "status", "vol1", "--json"], stdout=drbd_status(),
                          occurrences=1000)
    opener = FlakyOpener(backing[0])
    svc = make_service(opener, interval=0.2)
    assert svc.open() is False
    svc.serve_in_thread()
    t0 = time.monotonic()
    svc.stop()
    assert time.monotonic() - t0 < 3
    n = opener.attempts
    time.sleep(0.5)
    assert opener.attempts == n
    assert not svc.waiter.thread.is_alive()


def test_not_drbd_erofs_fails_at_start(backing):
    opener = FlakyOpener(backing[0])
    regular = os.stat(backing[0])
    svc = make_service(opener, stat_fn=lambda p: regular)
    try:
        with pytest.raises(OSError) as exc:
            svc.open()
        assert exc.value.errno == errno.EROFS
    finally:
        svc.server.server_close()


def test_drbdsetup_failure_is_explained(fake_process):
    fake_process.register(["drbdsetup", "status", "vol1", "--json"], returncode=10,
                          stderr="vol1: No such resource\n")
    reason = why_not_writable(DEV, MINOR)
    assert "exited with 10" in reason and "No such resource" in reason


def test_drbdsetup_missing_is_explained(fake_process):
    def missing(process):
        raise FileNotFoundError("drbdsetup")

    fake_process.register(["drbdsetup", "status", "vol1", "--json"], callback=missing)
    assert "not installed" in why_not_writable(DEV, MINOR)


def test_no_primary_peer(fake_process):
    fake_process.register(["drbdsetup", "status", "vol1", "--json"],
                          stdout=drbd_status(peer_role="Secondary"))
    assert "no peer is Primary" in why_not_writable(DEV, MINOR)


def test_resource_lookup_by_minor(fake_process):
    """/dev/drbdN paths name no resource: find it by minor in the full status."""
    other = json.loads(drbd_status(name="other"))[0]
    vol9 = json.loads(drbd_status(name="vol9"))[0] | {"devices": [{"volume": 0, "minor": 7}]}
    fake_process.register(["drbdsetup", "status", "--json"], stdout=json.dumps([other, vol9]))
    name, peers = primary_peers(None, 7)
    assert name == "vol9" and peers == ["host-b"]
    assert resource_of("/dev/drbd1000") is None
    assert resource_of("/dev/drbd/by-res/r0/0") == "r0"
