"""The command line: every bad argument or combination ends in one line and a non-zero exit
(never a traceback), the ready line, both entry points, and a closed stdout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from nbdsuite.launch import free_port
from tests.support.diskserver import REPO, launch, wait_ready

# Each case: the arguments ({name} is a file of the fixture below), and a word the one
# error line must contain.
BAD = {
    "port too large": (["--disk", "{disk}", "--port", "70000"], "70000"),
    "port negative": (["--disk", "{disk}", "--port", "-1"], "--port"),
    "port not a number": (["--disk", "{disk}", "--port", "http"], "http"),
    "timeout zero": (["--disk", "{disk}", "--timeout", "0"], "--timeout"),
    "timeout negative": (["--disk", "{disk}", "--timeout", "-5"], "--timeout"),
    "timeout nan": (["--disk", "{disk}", "--timeout", "nan"], "--timeout"),
    "timeout inf": (["--disk", "{disk}", "--timeout", "inf"], "--timeout"),
    "shutdown-timeout zero": (["--disk", "{disk}", "--shutdown-timeout", "0"],
                              "--shutdown-timeout"),
    "max-connections zero": (["--disk", "{disk}", "--max-connections", "0"],
                             "--max-connections"),
    "max-writers negative": (["--disk", "{disk}", "--max-writers", "-3"], "--max-writers"),
    "max-writers not a number": (["--disk", "{disk}", "--max-writers", "many"], "many"),
    "max-put-size zero": (["--disk", "{disk}", "--max-put-size", "0"], "--max-put-size"),
    "max-put-size bad suffix": (["--disk", "{disk}", "--max-put-size", "12Q"],
                                "--max-put-size"),
    "max-put-size negative": (["--disk", "{disk}", "--max-put-size", "-1"], "--max-put-size"),
    "no source": ([], "--disk"),
    "disk and snapshot": (["--disk", "{disk}", "--snapshot", "{disk}"], "--snapshot"),
    "missing disk": (["--disk", "{missing}"], "nope.img"),
    "disk is a folder": (["--disk", "{dir}"], "Is a directory"),
    "disk is a folder, read-only": (["--disk", "{dir}", "--read-only"],
                                    "not a regular file or block device"),
    "disk is a character device": (["--disk", "/dev/null"], "/dev/null"),
    "missing snapshot": (["--snapshot", "{missing}"], "nope.img"),
    "snapshot not an archive": (["--snapshot", "{disk}"], "disk.img"),
    "verify without snapshot": (["--disk", "{disk}", "--verify", "hash"], "--verify"),
    "verify unknown": (["--snapshot", "{disk}", "--verify", "md5"], "md5"),
    "user without password file": (["--disk", "{disk}", "--user", "u"], "--password-file"),
    "password file without user": (["--disk", "{disk}", "--password-file", "{pw}"], "--user"),
    "password file missing": (["--disk", "{disk}", "--user", "u", "--password-file",
                               "{missing}"], "nope.img"),
    "password file unreadable": (["--disk", "{disk}", "--user", "u", "--password-file",
                                  "{dir}"], "password file"),
    "password file empty": (["--disk", "{disk}", "--user", "u", "--password-file", "{empty}"],
                            "empty"),
    "password file not text": (["--disk", "{disk}", "--user", "u", "--password-file",
                                "{binary}"], "UTF-8"),
    "tls cert without key": (["--disk", "{disk}", "--tls-cert", "{cert}"], "--tls-key"),
    "tls cert missing": (["--disk", "{disk}", "--tls-cert", "{missing}", "--tls-key",
                          "{key}"], "nope.img"),
    "tls cert not a certificate": (["--disk", "{disk}", "--tls-cert", "{binary}", "--tls-key",
                                    "{key}"], "--tls-cert"),
    "tls key not the cert's": (["--disk", "{disk}", "--tls-cert", "{cert}", "--tls-key",
                                "{cert}"], "--tls-key"),
    "ip not an address": (["--disk", "{disk}", "--ip", "256.1.1.1"], "256.1.1.1"),
    "ip not local": (["--disk", "{disk}", "--ip", "192.0.2.1"], "192.0.2.1"),
    "unknown option": (["--disk", "{disk}", "--frobnicate"], "--frobnicate"),
}


@pytest.fixture
def files(tmp_path, disk, cert):
    (tmp_path / "folder").mkdir()
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "empty").write_text("")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00garbage")
    return {"disk": str(disk[0]), "missing": str(tmp_path / "nope.img"),
            "dir": str(tmp_path / "folder"), "pw": str(tmp_path / "pw"),
            "empty": str(tmp_path / "empty"), "binary": str(tmp_path / "binary"),
            "cert": str(cert[0]), "key": str(cert[1])}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_end_in_one_line(tmp_path, files, case):
    args, needle = BAD[case]
    args = [a.format(**files) for a in args]
    if "--port" not in args:
        args += ["--port", "0"]
    p = launch(args, tmp_path, "bad")
    assert p.wait(15) != 0
    assert p.stdout.read() == b""                   # never claimed readiness
    err = (tmp_path / "bad.stderr").read_text()
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("http-disk-server: error: ") and needle in err, err
    assert "Traceback" not in err


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


def _serves_with_stdout_gone(tmp_path, disk, before_ready: bool) -> None:
    port = free_port()
    args = ["--disk", str(disk[0]), "--port", str(port)]
    if before_ready:
        # A pipe whose reader is gone before the server starts: printing the ready line
        # fails with EPIPE, every time.
        r, w = os.pipe()
        os.close(r)
        with open(tmp_path / "closed.stderr", "wb") as err:
            p = subprocess.Popen([sys.executable, "-m", "http_disk_server", *args], stdout=w,
                                 stderr=err, cwd=REPO, start_new_session=True)
        os.close(w)
    else:
        p = launch(args, tmp_path, "closed")
        wait_ready(p)
        p.stdout.close()                   # the reader went away after the ready line
    try:
        end = time.monotonic() + 15
        while True:                        # bounded wait for the port to answer
            try:
                r = requests.get(f"http://127.0.0.1:{port}/", headers={"Range": "bytes=0-9"},
                                 timeout=2)
                break
            except requests.ConnectionError:
                assert p.poll() is None and time.monotonic() < end, \
                    (tmp_path / "closed.stderr").read_text()
                time.sleep(0.05)
        assert r.status_code == 206 and r.content == disk[1][:10]
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
    err = (tmp_path / "closed.stderr").read_text()
    assert "Traceback" not in err, err
    assert ("ready line" in err) == before_ready, err


def test_stdout_closed_after_the_ready_line(tmp_path, disk):
    _serves_with_stdout_gone(tmp_path, disk, before_ready=False)


def test_stdout_closed_before_the_ready_line(tmp_path, disk):
    _serves_with_stdout_gone(tmp_path, disk, before_ready=True)
