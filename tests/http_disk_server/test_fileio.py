"""FileBackend details that a healthy local file never shows: short I/O, no fallocate."""

from __future__ import annotations

import errno
import os

import pytest

from http_disk_server import fileio
from http_disk_server.backend import BackendError


@pytest.fixture
def backend(tmp_path):
    data = os.urandom(100_000)
    p = tmp_path / "f.img"
    p.write_bytes(data)
    b = fileio.open(str(p), read_only=False)
    yield b, p, data
    b.close()


def test_short_reads_and_writes_are_looped(backend, monkeypatch):
    b, p, data = backend
    real_pwrite, real_preadv = os.pwrite, os.preadv
    calls = {"w": 0, "r": 0}

    def short_pwrite(fd, buf, off):
        calls["w"] += 1
        return real_pwrite(fd, bytes(buf[:1000]), off)

    def short_preadv(fd, bufs, off):
        calls["r"] += 1
        return real_preadv(fd, [bufs[0][:777]], off)

    monkeypatch.setattr(os, "pwrite", short_pwrite)
    monkeypatch.setattr(os, "preadv", short_preadv)
    new = os.urandom(10_000)
    b.write(memoryview(new), 5000)
    assert calls["w"] == 10
    out = bytearray(10_000)
    b.readinto(memoryview(out), 5000)
    assert out == new and calls["r"] == 13
    assert p.read_bytes() == data[:5000] + new + data[15000:]


def test_read_past_end_is_an_error_not_garbage(backend):
    b, _, _ = backend
    with pytest.raises(BackendError) as exc:
        b.readinto(memoryview(bytearray(10)), 99_995)
    assert "offset 100000" in str(exc.value)


def test_zero_falls_back_to_writing_zeros(backend, monkeypatch):
    b, p, data = backend
    tried = []

    def no_fallocate(fd, mode, off, length):
        tried.append(mode)
        raise OSError(errno.EOPNOTSUPP, "not supported")

    monkeypatch.setattr(fileio, "fallocate", no_fallocate)
    b.zero(1234, 50_000)
    assert p.read_bytes() == data[:1234] + bytes(50_000) + data[51234:]
    assert len(tried) == 2          # punch hole, then zero range
    b.zero(0, 10)                   # unsupported modes are not retried
    assert len(tried) == 2
    assert p.read_bytes()[:10] == bytes(10)


def test_zero_real_error_is_reported(backend, monkeypatch):
    b, _, _ = backend

    def enospc(fd, mode, off, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "fallocate", enospc)
    with pytest.raises(BackendError) as exc:
        b.zero(0, 4096)
    assert exc.value.errno == errno.ENOSPC and "offset 0" in str(exc.value)


def test_not_a_file_or_device(tmp_path):
    with pytest.raises(BackendError):
        fileio.open(str(tmp_path), read_only=True)
