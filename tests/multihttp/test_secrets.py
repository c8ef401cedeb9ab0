"""No password reaches nbdkit's log, in any of the forms it could take there.

A leak can show the password itself, the ``user:password`` pair as a URL carries it, or
the base64 of ``user:password`` that a logged ``Authorization: Basic`` header would show.
Every check looks for all three, over everything nbdkit printed.
"""

from __future__ import annotations

import base64
import subprocess

import nbd
import pytest

from tests.multihttp.conftest import PLUGIN, make_disk

USER = "alice"
SECRET = "TopSecretPw"


def _forms(user: str = USER, secret: str = SECRET) -> list[str]:
    pair = f"{user}:{secret}"
    b64 = base64.b64encode(pair.encode()).decode()
    return [secret, pair, b64, b64.rstrip("=")]


def _assert_clean(text: str) -> None:
    for form in _forms():
        assert form not in text, f"secret leaked as {form!r}:\n{text}"


@pytest.mark.parametrize("url", [
    f"http://{USER}:{SECRET}@h/",
    f"https://{USER}:{SECRET}@h:8443/disk",
    f"http://{USER}:{SECRET}@h:99999/",          # refused for its port
    f"ftp://{USER}:{SECRET}@h/",                  # refused for its scheme
    f"http://{USER}:{SECRET}@/",                  # refused for having no host
    f"http://{USER}:{SECRET}@[::1/",              # refused as unparsable
])
def test_refused_url_with_credentials_does_not_echo_them(tmp_path, url):
    r = subprocess.run(["nbdkit", "-f", "-U", str(tmp_path / "s"), "python", PLUGIN,
                        f"urls={url}"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "urls" in lines[0], r.stderr
    _assert_clean(r.stderr + r.stdout)


@pytest.fixture
def authed(tmp_path, fake):
    path = tmp_path / "disk.img"
    data = make_disk(path, 1 << 20, seed=5)
    srv = fake(path)
    srv.auth = f"{USER}:{SECRET}"
    return srv, data


def test_verbose_serving_with_failures_logs_no_secret(authed, fake, nbdkit_proc, tmp_path):
    """Debug output on, a dead first server, retries, a failover, 5xx replies: the log
    says a lot, and never the password (given as +FILE: a literal password= is printed by
    nbdkit itself in -v mode, which the README warns about)."""
    srv, data = authed
    pwfile = tmp_path / "pw"
    pwfile.write_text(SECRET + "\n")
    dead = "http://127.0.0.1:9/"
    k = nbdkit_proc([dead, srv.url], f"user={USER}", f"password=+{pwfile}", "retries=1",
                    "retry-delay=0", verbose=True)
    h = k.handle()
    try:
        assert h.pread(4096, 0) == data[:4096]
        srv.mode = "5xx"
        with pytest.raises(nbd.Error):
            h.pread(4096, 4096)
        srv.mode = "ok"
        h.pwrite(b"x" * 512, 0)
    finally:
        h.shutdown()
    k.stop()
    log = k.log.read_text()
    assert "503" in log and "127.0.0.1:9" in log, log         # the failures were logged
    _assert_clean(log)


def test_wrong_password_logs_no_secret(authed, nbdkit_proc):
    srv, _ = authed
    k = nbdkit_proc(srv.url, f"user={USER}", "password=WrongPw",
                    stdin_data=b"", verbose=True)
    with pytest.raises(nbd.Error):
        k.handle().pread(512, 0)
    k.stop()
    log = k.log.read_text()
    assert "authentication refused" in log
    for form in _forms(USER, "WrongPw")[1:]:          # nbdkit -v prints literal values
        assert form not in log, form
    _assert_clean(log)
