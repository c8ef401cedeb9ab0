"""Basic auth (constant-time check, password never logged) and TLS with a fresh certificate."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests.support.diskserver import launch, start_server
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


@pytest.fixture
def cert(tmp_path):
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def test_tls(tmp_path, disk, cert):
    crt, key = cert
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    s = start_server(["--disk", str(disk[0]), "--tls-cert", str(crt), "--tls-key", str(key),
                      "--user", "u", "--password-file", str(pw)], tmp_path)
    try:
        assert s.url.startswith("https://") and "https://" in s.ready_line
        with requests.Session() as sess:
            # verify per request: a session-level verify loses to REQUESTS_CA_BUNDLE
            sess.auth = ("u", PASSWORD)
            v = str(crt)
            # large ranges go through the pread path (sendfile would bypass TLS)
            r = sess.get(s.url, headers={"Range": "bytes=1000-3000999"}, timeout=10, verify=v)
            assert r.status_code == 206 and r.content == disk[1][1000:3001000]
            r = sess.get(s.url, timeout=10, verify=v)
            assert r.content == disk[1]
            data = os.urandom(70000)
            r = sess.put(s.url, data=data, headers={"Content-Range": "bytes 5-70004/*"},
                         timeout=10, verify=v)
            assert r.status_code == 200
            assert sess.get(s.url, headers={"Range": "bytes=5-70004"}, timeout=5,
                            verify=v).content == data
            assert sess.get(s.url, auth=("u", "bad"), timeout=5, verify=v).status_code == 401
        out = subprocess.run(["curl", "-sS", "-f", "--cacert", str(crt), "-u", f"u:{PASSWORD}",
                              "-r", "0-99", s.url], capture_output=True, timeout=20)
        assert out.returncode == 0 and out.stdout == disk[1][:5] + data[:95]
        # Without trusting the certificate the client refuses; plain HTTP gets nothing useful.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(s.url, timeout=5)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(s.url.replace("https", "http"), timeout=5)
        # The server still serves after those failed handshakes.
        r = requests.head(s.url, verify=str(crt), auth=("u", PASSWORD), timeout=5)
        assert r.status_code == 200
    finally:
        assert s.stop() == 0, s.log_text()


def test_tls_bad_key_is_one_line_error(tmp_path, disk, cert):
    crt, _ = cert
    p = launch(["--disk", str(disk[0]), "--port", "0", "--tls-cert", str(crt),
                "--tls-key", str(crt)], tmp_path, "bad")
    assert p.wait(10) == 1
    err = (tmp_path / "bad.stderr").read_text()
    assert "--tls-key" in err and len(err.strip().splitlines()) == 1, err
