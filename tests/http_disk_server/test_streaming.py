"""RangeSender in process: pread with the first chunk read before the status line, sendfile,
and the per-connection fallback when a descriptor cannot be spliced."""

from __future__ import annotations

import errno
import io
import os
import socket

import pytest

from http_disk_server import fileio, streaming
from http_disk_server.backend import Backend, BackendError
from http_disk_server.streaming import IO_CHUNK, RangeSender


class MemoryBackend(Backend):
    name = "memory"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def readinto(self, buf: memoryview, offset: int) -> None:
        if offset + len(buf) > self.size:
            raise BackendError(errno.EIO, f"{self.name}: read past the end at {offset}")
        buf[:] = self.data[offset:offset + len(buf)]


def test_pread_path_reads_the_first_chunk_before_the_status_line():
    data = os.urandom(IO_CHUNK * 2 + 123)
    out = io.BytesIO()
    a, b = socket.socketpair()
    sender = RangeSender(a, out, 5.0, sendfile=True)     # no descriptor: pread anyway
    backend = MemoryBackend(data)
    first = sender.prepare(backend, 7, len(data) - 7)
    assert first is not None and len(first) == IO_CHUNK
    sender.send(backend, 7, len(data) - 7, first)
    assert out.getvalue() == data[7:]
    with pytest.raises(BackendError):     # an error at prepare() can still become a status
        sender.prepare(MemoryBackend(b"x" * 10), 5, 10)
    a.close()
    b.close()


@pytest.fixture
def file_backend(tmp_path):
    p = tmp_path / "f.img"
    data = os.urandom(300_000)
    p.write_bytes(data)
    backend = fileio.open(str(p), read_only=True)
    yield backend, data
    backend.close()


def _receive(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        got += sock.recv(n - len(got))
    return got


def test_sendfile_path(file_backend):
    backend, data = file_backend
    a, b = socket.socketpair()
    sender = RangeSender(a, io.BytesIO(), 5.0, sendfile=True)
    assert sender.prepare(backend, 1000, 5000) is None          # sendfile: nothing read yet
    sender.send(backend, 1000, 5000, None)
    assert _receive(b, 5000) == data[1000:6000]
    a.close()
    b.close()


def test_sendfile_refused_falls_back_for_the_connection(file_backend, monkeypatch):
    backend, data = file_backend
    calls = []

    def no_splice(out_fd, in_fd, offset, count):
        calls.append(offset)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(streaming.os, "sendfile", no_splice)
    out = io.BytesIO()
    a, b = socket.socketpair()
    sender = RangeSender(a, out, 5.0, sendfile=True)
    sender.send(backend, 0, 4096, sender.prepare(backend, 0, 4096))
    assert out.getvalue() == data[:4096] and calls == [0]
    # Later ranges on this connection go straight to pread: sendfile is not retried.
    first = sender.prepare(backend, 4096, 4096)
    assert first is not None
    sender.send(backend, 4096, 4096, first)
    assert out.getvalue() == data[:8192] and calls == [0]
    a.close()
    b.close()


def test_no_sendfile_under_tls(file_backend):
    backend, data = file_backend
    a, b = socket.socketpair()
    out = io.BytesIO()
    sender = RangeSender(a, out, 5.0, sendfile=False)
    sender.send(backend, 10, 100, sender.prepare(backend, 10, 100))
    assert out.getvalue() == data[10:110]
    a.close()
    b.close()
