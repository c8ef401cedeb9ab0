"""The command line: one-line errors for bad options and unusable inputs, the ready line,
and both entry points."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import requests

from tests.support.diskserver import REPO, launch, wait_ready


def test_default_bind_is_loopback(tmp_path, disk):
    p = launch(["--disk", str(disk[0]), "--port", "0"], tmp_path)
    try:
        line = wait_ready(p)
        assert "//127.0.0.1:" in line
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0


def test_busy_port(tmp_path, disk):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        p = launch(["--disk", str(disk[0]), "--port", str(port)], tmp_path, "busy")
        assert p.wait(10) == 1
        assert p.stdout.read() == b""          # never claimed readiness
        err = (tmp_path / "busy.stderr").read_text().strip()
        assert len(err.splitlines()) == 1 and "already in use" in err and str(port) in err
    finally:
        blocker.close()


def test_missing_device_is_one_line_error(tmp_path):
    p = launch(["--disk", str(tmp_path / "nope.img"), "--port", "0"], tmp_path, "bad")
    assert p.wait(10) == 1
    err = (tmp_path / "bad.stderr").read_text().strip()
    assert len(err.splitlines()) == 1 and "nope.img" in err



def test_entry_points(tmp_path, disk):
    """The installed console script and the source-tree wrapper both start the server."""
    bindir = os.path.dirname(sys.executable)
    for name, cmd in [("console", [os.path.join(bindir, "http-disk-server")]),
                      ("wrapper", [sys.executable, str(REPO / "scripts" / "http-disk-server")])]:
        err = open(tmp_path / f"{name}.stderr", "wb")
        p = subprocess.Popen([*cmd, "--disk", str(disk[0]), "--port", "0", "--read-only"],
                             stdout=subprocess.PIPE, stderr=err)
        try:
            line = wait_ready(p)
            port = int(line.split(":")[-1].split("/")[0])
            r = requests.get(f"http://127.0.0.1:{port}/", headers={"Range": "bytes=0-3"},
                             timeout=5)
            assert r.content == disk[1][:4]
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(15) == 0


def test_auth_option_errors(tmp_path, disk):
    empty = tmp_path / "empty"
    empty.write_text("")
    for args, needle in [(["--user", "u"], "--password-file"),
                         (["--user", "u", "--password-file", str(empty)], "empty"),
                         (["--user", "u", "--password-file", str(tmp_path / "nope")], "nope")]:
        p = launch(["--disk", str(disk[0]), "--port", "0", *args], tmp_path, "bad")
        assert p.wait(10) == 1
        err = (tmp_path / "bad.stderr").read_text()
        assert needle in err and len(err.strip().splitlines()) == 1, err



def test_tls_bad_key_is_one_line_error(tmp_path, disk, cert):
    crt, _ = cert
    p = launch(["--disk", str(disk[0]), "--port", "0", "--tls-cert", str(crt),
                "--tls-key", str(crt)], tmp_path, "bad")
    assert p.wait(10) == 1
    err = (tmp_path / "bad.stderr").read_text()
    assert "--tls-key" in err and len(err.strip().splitlines()) == 1, err
