"""Parameters (bad ones stop nbdkit with one line), Basic auth and every password form."""

from __future__ import annotations

import os
import subprocess

import nbd
import pytest

from multihttp import params as mparams
from tests.multihttp.conftest import PLUGIN, make_disk

MiB = 1 << 20
SECRET = "s3cr-et pw"


@pytest.mark.parametrize("args,needle", [
    ([], "urls= is required"),
    (["urls=ftp://host/x"], "scheme must be http or https"),
    (["urls=http://u:p@h/"], "credentials"),
    (["urls=http://h/", "device-size=12Q"], "device-size"),
    (["urls=http://h/", "device-size=4Mfoo"], "device-size"),
    (["urls=http://h/", "timeout=-1"], "timeout"),
    (["urls=http://h/", "retries=x"], "retries"),
    (["urls=http://h/", "insecure=maybe"], "insecure"),
    (["urls=http://h/", "connections=0"], "connections"),
    (["urls=http://h/", "connections=many"], "connections"),
    (["urls=http://h/", "bogus=1"], "unknown parameter 'bogus'"),
    (["urls=http://h/", "user=u", "password=+/nonexistent/pw"], "password file"),
    (["urls=http://h/", f"password={SECRET}"], "password= given without user="),
])
def test_bad_parameter_one_line(tmp_path, args, needle):
    r = subprocess.run(["nbdkit", "-f", "-U", str(tmp_path / "s"), "python", PLUGIN, *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert SECRET not in r.stderr


def test_sizes_and_bounds():
    p = mparams.parse([("urls", "http://a/,https://b:8443/x?y=1"), ("device-size", "256M"),
                       ("timeout", "5"), ("connect-timeout", "1"), ("retries", "3"),
                       ("retry-delay", "0.5"), ("clock-skew", "0.25")])
    assert p.device_size == 256 * MiB
    assert [(u.host, u.port, u.path) for u in p.urls] == [("a", 80, "/"), ("b", 8443, "/x?y=1")]
    assert mparams.backoff_delays(p) == [0.5, 1.0, 2.0]
    assert p.clock_skew == 0.25
    # 2 servers x (4 attempts x (4x1 connect/checks + 5 request + 5 + 0.25 waiting out an
    # unanswered write's deadline) + 5 s stale-connection retry + 3.5 s backoff)
    assert mparams.worst_case_seconds(p) == 2 * (4 * 14.25 + 5 + 3.5)


def test_password_forms_unit(tmp_path):
    f = tmp_path / "pw"
    f.write_text(SECRET + "\n\n")
    assert mparams.read_password("+" + str(f)) == SECRET + "\n"   # one newline stripped
    r, w = os.pipe()
    os.write(w, (SECRET + "\n").encode())
    os.close(w)
    assert mparams.read_password(f"-{r}") == SECRET
    assert mparams.read_password("-x1") == "-x1"                    # literal
    p = mparams.parse([("urls", "http://a/"), ("user", "u"), ("password", SECRET)])
    assert SECRET not in repr(p) and SECRET not in str(p)


@pytest.fixture
def authed(tmp_path, fake):
    path = tmp_path / "disk.img"
    data = make_disk(path, MiB, seed=3)
    srv = fake(path)
    srv.auth = f"alice:{SECRET}"
    return srv, data


def _check(k, data):
    h = k.handle()
    assert h.pread(4096, 4096) == data[4096:8192]
    h.shutdown()
    k.stop()
    assert SECRET not in k.log.read_text()


def test_password_literal(authed, nbdkit_proc):
    srv, data = authed
    _check(nbdkit_proc(srv.url, "user=alice", f"password={SECRET}"), data)


def test_password_file(authed, nbdkit_proc, tmp_path):
    srv, data = authed
    f = tmp_path / "pwfile"
    f.write_text(SECRET + "\n")
    _check(nbdkit_proc(srv.url, "user=alice", f"password=+{f}", verbose=True), data)


def test_password_fd(authed, nbdkit_proc):
    srv, data = authed
    r, w = os.pipe()
    os.write(w, SECRET.encode())
    os.close(w)
    try:
        _check(nbdkit_proc(srv.url, "user=alice", f"password=-{r}", pass_fds=(r,)), data)
    finally:
        os.close(r)


def test_password_stdin(authed, nbdkit_proc):
    srv, data = authed
    _check(nbdkit_proc(srv.url, "user=alice", "password=-",
                       stdin_data=(SECRET + "\n").encode()), data)


@pytest.mark.parametrize("creds", [["user=alice", "password=Wr0ngPw!"], [], ["user=bob",
                                                                        f"password={SECRET}"]])
def test_wrong_or_missing_password_refused(authed, nbdkit_proc, creds):
    srv, _ = authed
    k = nbdkit_proc(srv.url, *creds)
    with pytest.raises(nbd.Error):
        k.handle().pread(512, 0)
    k.stop()
    log = k.log.read_text()
    assert "authentication refused" in log
    assert "Wr0ngPw!" not in log and SECRET not in log
    assert not any(m == "GET" for m, *_ in srv.requests)


def test_plugin_args_parse_back_to_the_same_params(tmp_path):
    """nbd-http-server builds nbdkit's command line from a Params object: every value
    must survive the trip through key=value (the password stays out of it)."""
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    p = mparams.parse([("urls", "https://a:8443/d,http://b/x?y=1"), ("device-size", "64M"),
                       ("user", "u"), ("password", SECRET), ("timeout", "3.5"),
                       ("connect-timeout", "1"), ("retries", "4"), ("retry-delay", "0.2"),
                       ("connections", "7"), ("clock-skew", "2.5"), ("cafile", str(ca)),
                       ("insecure", "true")])
    args = mparams.plugin_args(p)
    assert not any(SECRET in a for a in args)
    back = mparams.parse([tuple(a.split("=", 1)) for a in args] + [("password", SECRET)])
    assert back == p
