"""Basic auth: accepted and refused credentials, the password never logged."""

from __future__ import annotations

import pytest
import requests

from tests.support.diskserver import start_server
from tests.support.rawhttp import request as raw_request

PASSWORD = "s3cret-Pa55-word-7f1c"


@pytest.fixture
def auth_server(tmp_path, disk):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    s = start_server(["--disk", str(disk[0]), "--user", "alice", "--password-file", str(pw),
                      "-v"], tmp_path)
    yield s
    assert s.stop() == 0


def test_auth_accepted_and_refused(auth_server, disk):
    url = auth_server.url
    ok = requests.get(url, auth=("alice", PASSWORD), headers={"Range": "bytes=0-99"}, timeout=5)
    assert ok.status_code == 206 and ok.content == disk[1][:100]
    for auth in [None, ("alice", "wrong"), ("bob", PASSWORD), ("alice", PASSWORD + "x"),
                 ("alice", "")]:
        r = requests.get(url, auth=auth, timeout=5)
        assert r.status_code == 401, auth
        assert r.headers["WWW-Authenticate"].startswith("Basic ")
    for value in ["Bearer abc", "Basic !!!notbase64", "Basic " + "YWxpY2U=",  # no colon
                  "Basic"]:
        r = raw_request(auth_server.port, f"GET / HTTP/1.1\r\nAuthorization: {value}\r\n"
                        f"\r\n".encode())
        assert r.status == 401
    # Writes are refused too, and write nothing.
    r = requests.put(url, data=b"x" * 10, auth=("alice", "nope"), timeout=5,
                     headers={"Content-Range": "bytes 0-9/*"})
    assert r.status_code == 401
    r = requests.patch(url, json={"op": "zero", "offset": 0, "size": 10}, timeout=5)
    assert r.status_code == 401
    assert disk[0].read_bytes() == disk[1]
    r = requests.put(url, data=b"x" * 10, auth=("alice", PASSWORD), timeout=5,
                     headers={"Content-Range": "bytes 0-9/*"})
    assert r.status_code == 200
    assert disk[0].read_bytes()[:10] == b"x" * 10


def test_password_never_logged(auth_server, tmp_path):
    requests.get(auth_server.url, auth=("alice", PASSWORD), timeout=5)
    requests.get(auth_server.url, auth=("alice", "wrong-guess"), timeout=5)
    requests.get(auth_server.url + "missing", auth=("alice", PASSWORD), timeout=5)
    assert auth_server.stop() == 0
    log = auth_server.log_text()
    assert "GET /missing" in log            # -v logs requests...
    assert PASSWORD not in log and "wrong-guess" not in log   # ...but never credentials
    import base64
    assert base64.b64encode(f"alice:{PASSWORD}".encode()).decode() not in log
    # nor in the process title / command line
    assert PASSWORD not in " ".join(auth_server.proc.args)
