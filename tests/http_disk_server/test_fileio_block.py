"""BlockBackend on a real block device (a loop device over a file): BLKGETSIZE64, sendfile,
fsync before every durable reply, zeroing."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests.support.diskserver import SyncTrace, start_server
from tests.support.rawhttp import Conn, patch, put


@pytest.fixture
def loopdev(tmp_path):
    backing = tmp_path / "backing.img"
    data = os.urandom(6 << 20)
    backing.write_bytes(data)
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
        # A kernel privilege, not a tool CI could install: an unprivileged container has
        # no loop devices.  Where they exist, a failure to attach one fails the test.
        pytest.skip("loop devices need root and /dev/loop-control")
    out = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, f"losetup: {out.stderr.strip()}"
    dev = out.stdout.strip()
    attached = [True]

    def detach() -> None:
        # Only once: a second detach could hit a device another process attached since.
        if attached[0]:
            attached[0] = False
            subprocess.run(["losetup", "-d", dev], capture_output=True, timeout=30)

    try:
        yield dev, backing, data, detach
    finally:
        detach()


def test_block_device(tmp_path, loopdev):
    dev, backing, data, detach = loopdev
    s = start_server(["--disk", dev], tmp_path)
    expect = bytearray(data)
    try:
        h = requests.head(s.url, timeout=5)
        assert h.headers["Content-Length"] == str(len(data))   # from BLKGETSIZE64
        r = requests.get(s.url, headers={"Range": "bytes=1048570-2097160"}, timeout=10)
        assert r.status_code == 206 and r.content == data[1048570:2097161]
        assert requests.get(s.url, timeout=10).content == data
        new = os.urandom(8192)
        r = requests.put(s.url, data=new, headers={"Content-Range": "bytes 40960-49151/*"},
                         timeout=5)
        assert r.status_code == 200
        expect[40960:49152] = new
        r = requests.patch(s.url, json={"op": "zero", "offset": 1 << 20, "size": 1 << 20,
                                        "flush": True}, timeout=5)
        assert r.status_code == 200
        expect[1 << 20:2 << 20] = bytes(1 << 20)
        past = requests.put(s.url, data=b"x" * 512, timeout=5,
                            headers={"Content-Range": f"bytes {len(data)}-{len(data) + 511}/*"})
        assert past.status_code == 416
        assert requests.get(s.url, timeout=10).content == bytes(expect)
        ext = requests.get(s.url + "extents", timeout=5).json()
        assert ext == [{"start": 0, "length": len(data), "zero": False, "hole": False}]
    finally:
        assert s.stop() == 0, s.log_text()
    detach()
    assert backing.read_bytes() == expect


def test_block_device_durable_paths_fsync(tmp_path, loopdev):
    """A block device is flushed with fsync (its cache), before the reply, on every durable
    path; ?flush=n and an unflushed zero do not sync."""
    dev, _, _, _ = loopdev
    s = start_server(["--disk", dev], tmp_path)
    cases = [(put(0, os.urandom(4096)), ["fsync"]),
             (put(4096, os.urandom(4096), path="/?flush=n"), []),
             (patch({"op": "flush"}), ["fsync"]),
             (patch({"op": "zero", "offset": 0, "size": 65536, "flush": True}), ["fsync"]),
             (patch({"op": "zero", "offset": 0, "size": 65536}), [])]
    try:
        with SyncTrace(s.pid, dev, tmp_path) as trace:
            c = Conn(s.port)
            for raw, _ in cases:
                c.send(raw)
                assert c.read_response().status == 200
            c.close()
            replies = trace.wait_replies(len(cases))
    finally:
        assert s.stop() == 0, s.log_text()
    assert [r.syncs for r in replies] == [syncs for _, syncs in cases]
