"""Fixtures for the multihttp tests: disks, HTTP servers, nbdkit + libnbd handles."""

from __future__ import annotations

import itertools
import os
import signal
from pathlib import Path

import nbd
import pytest

from nbdsuite.launch import DiskServerProcess, NbdkitProcess
from tests.support.fakeserver import FakeServer

REPO = Path(__file__).resolve().parents[2]
PLUGIN = str(REPO / "plugins" / "multihttp.py")


def make_disk(path: Path, size: int, seed: int = 1) -> bytes:
    data = os.urandom(size) if seed is None else _pattern(size, seed)
    path.write_bytes(data)
    return data


def _pattern(size: int, seed: int) -> bytes:
    import random
    return random.Random(seed).randbytes(size)


_serial = itertools.count(1)


class ServerProc(DiskServerProcess):
    """The real http-disk-server on ``disk``, on 127.0.0.1 (a given port, or any)."""

    def __init__(self, disk: Path, extra: list[str] | None = None, port: int | None = None):
        args = ["--disk", str(disk), *(extra or [])]
        if port is not None:
            args += ["--port", str(port)]
        # One log per server, even for several servers of one disk on any port.
        name = port if port is not None else f"any{next(_serial)}"
        super().__init__(args, Path(f"{disk}.server-{name}.log"), cwd=REPO)

    def kill(self, sig=signal.SIGKILL) -> None:
        self.send_signal(sig)
        self.proc.wait(10)


@pytest.fixture
def servers():
    made: list[ServerProc] = []

    def start(disk, extra=None, port=None) -> ServerProc:
        s = ServerProc(disk, extra, port)
        made.append(s)
        return s
    yield start
    for s in made:
        try:
            s.stop()
        except Exception:
            s.kill()


@pytest.fixture
def fake():
    made: list[FakeServer] = []

    def start(path, **kw) -> FakeServer:
        s = FakeServer(str(path), **kw).start()
        made.append(s)
        return s
    yield start
    for s in made:
        s.stop()


def nbdkit_args(urls, *params, readonly=False) -> list[str]:
    if not isinstance(urls, str):
        urls = ",".join(urls)
    cmd = ["nbdkit", "-s", "--exit-with-parent"]
    if readonly:
        cmd.append("-r")
    return cmd + ["python", PLUGIN, f"urls={urls}", *params]


@pytest.fixture
def connect():
    handles: list[nbd.NBD] = []

    def open_(urls, *params, readonly=False) -> nbd.NBD:
        h = nbd.NBD()
        h.connect_command(nbdkit_args(urls, *params, readonly=readonly))
        handles.append(h)
        return h
    yield open_
    for h in handles:
        try:
            h.shutdown()
        except nbd.Error:
            pass


class NbdkitProc(NbdkitProcess):
    """nbdkit on a Unix socket with its log captured (for tests that read the log)."""

    def __init__(self, tmp: Path, urls, *params, readonly=False, name="nbdkit",
                 verbose=False, stdin_data: bytes | None = None, pass_fds=(),
                 nbdkit_opts=()):
        if not isinstance(urls, str):
            urls = ",".join(urls)
        opts = (["-r"] if readonly else []) + (["-v"] if verbose else []) + list(nbdkit_opts)
        super().__init__(tmp, ["python", PLUGIN, f"urls={urls}", *params], options=opts,
                         name=name, timeout=10, stdin=stdin_data or b"", pass_fds=pass_fds)
        self.sock = self.socket

    def handle(self) -> nbd.NBD:
        h = nbd.NBD()
        h.connect_unix(self.sock)
        return h

    def stop(self) -> None:
        try:
            super().stop(10)
        except TimeoutError:
            pass


@pytest.fixture
def nbdkit_proc(tmp_path):
    made: list[NbdkitProc] = []

    def start(urls, *params, name="nbdkit", **kw) -> NbdkitProc:
        p = NbdkitProc(tmp_path, urls, *params, name=name, **kw)
        made.append(p)
        return p
    yield start
    for p in made:
        p.stop()
