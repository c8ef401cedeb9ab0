"""Fixtures that run the real http-disk-server as a child process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.diskserver import start_server


def make_disk(path: Path, size: int = 8 << 20) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path.write_bytes(data)
    return path, data


@pytest.fixture
def disk(tmp_path: Path) -> tuple[Path, bytes]:
    """An 8 MiB file of random bytes, plus its contents."""
    return make_disk(tmp_path / "disk.img")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server per module for tests that only read: (server, disk bytes)."""
    d = tmp_path_factory.mktemp("shared")
    path, data = make_disk(d / "disk.img")
    s = start_server(["--disk", str(path), "--read-only"], d)
    yield s, data
    assert s.stop() == 0, s.log_text()


@pytest.fixture
def server(tmp_path: Path, disk):
    """A writable server on ``disk``; teardown checks a clean SIGTERM exit."""
    s = start_server(["--disk", str(disk[0]), "--max-put-size", "4M", "--timeout", "5"],
                     tmp_path)
    yield s
    assert s.stop() == 0, s.log_text()


@pytest.fixture
def cert(tmp_path):
    """A fresh self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key
