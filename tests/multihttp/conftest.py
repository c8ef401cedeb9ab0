"""Fixtures for the multihttp tests: disks, HTTP servers, nbdkit + libnbd handles."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbd
import pytest

from tests.support.fakeserver import FakeServer

REPO = Path(__file__).resolve().parents[2]
PLUGIN = str(REPO / "plugins" / "multihttp.py")
VENV_BIN = Path(sys.executable).parent
HTTP_DISK_SERVER = shutil.which("http-disk-server", path=str(VENV_BIN)) or shutil.which(
    "http-disk-server")
FAKE = str(REPO / "tests" / "support" / "fakeserver.py")


def make_disk(path: Path, size: int, seed: int = 1) -> bytes:
    data = os.urandom(size) if seed is None else _pattern(size, seed)
    path.write_bytes(data)
    return data


def _pattern(size: int, seed: int) -> bytes:
    import random
    return random.Random(seed).randbytes(size)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_server_works() -> bool:
    if not HTTP_DISK_SERVER:
        return False
    try:
        r = subprocess.run([HTTP_DISK_SERVER, "--help"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


USE_REAL = real_server_works()


class ServerProc:
    """An HTTP disk server process on 127.0.0.1 (the real one when installed)."""

    def __init__(self, disk: Path, extra: list[str] | None = None, port: int | None = None):
        self.port = port or free_port()
        if USE_REAL:
            cmd = [HTTP_DISK_SERVER, "--disk", str(disk), "--ip", "127.0.0.1",
                   "--port", str(self.port)] + (extra or [])
        else:
            cmd = [sys.executable, FAKE, str(disk), str(self.port)]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, text=True, start_new_session=True)
        deadline = time.monotonic() + 10
        for line in self.proc.stdout:
            if line.rstrip().endswith("Server ready!"):
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError(f"server did not start: {cmd}")
        self.url = f"http://127.0.0.1:{self.port}/"
        # Keep draining its output so it never blocks on a full pipe.
        import threading
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM if self.proc.poll() is None else signal.SIGKILL)


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


class NbdkitProc:
    """nbdkit on a Unix socket with its log captured (for tests that read the log)."""

    def __init__(self, tmp: Path, urls, *params, readonly=False, name="nbdkit",
                 verbose=False, stdin_data: bytes | None = None, pass_fds=(),
                 nbdkit_opts=()):
        if not isinstance(urls, str):
            urls = ",".join(urls)
        self.sock = str(tmp / f"{name}.sock")
        self.pidfile = tmp / f"{name}.pid"
        self.log = tmp / f"{name}.log"
        cmd = ["nbdkit", "-f", "-U", self.sock, "-P", str(self.pidfile), "--exit-with-parent"]
        if readonly:
            cmd.append("-r")
        if verbose:
            cmd.append("-v")
        cmd += list(nbdkit_opts)
        cmd += ["python", PLUGIN, f"urls={urls}", *params]
        self._logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE, pass_fds=pass_fds)
        self.proc.stdin.write(stdin_data or b"")
        self.proc.stdin.close()
        deadline = time.monotonic() + 10
        while not self.pidfile.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nbdkit did not start: {self.log.read_text()}")
            time.sleep(0.02)

    def handle(self) -> nbd.NBD:
        h = nbd.NBD()
        h.connect_unix(self.sock)
        return h

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._logf.close()


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
