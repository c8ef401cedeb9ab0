"""Auth, read-only and TLS against real http-disk-server processes."""

from __future__ import annotations

import subprocess

import nbd
import pytest

from tests.multihttp.conftest import make_disk

MiB = 1 << 20
SECRET = "correct horse"


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    return path, make_disk(path, 2 * MiB, seed=13)


def test_basic_auth_real_server(disk, servers, nbdkit_proc, tmp_path):
    path, data = disk
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    srv = servers(path, ["--user", "alice", "--password-file", str(pw)])
    k = nbdkit_proc(srv.url, "user=alice", f"password=+{pw}", name="good")
    h = k.handle()
    assert h.pread(4096, 0) == data[:4096]
    h.pwrite(b"a" * 4096, 0)
    assert path.read_bytes()[:4096] == b"a" * 4096
    h.shutdown()
    bad = nbdkit_proc(srv.url, "user=alice", "password=Wr0ngPw!", name="bad")
    with pytest.raises(nbd.Error):
        bad.handle().pread(512, 0)
    bad.stop()
    log = bad.log.read_text()
    assert "authentication refused" in log and "Wr0ngPw!" not in log


def test_read_only_server_write_is_eperm(disk, servers, connect):
    path, data = disk
    srv = servers(path, ["--read-only"])
    h = connect(srv.url, "retries=0")
    assert h.is_read_only()                # from OPTIONS: Allow lists no PUT
    assert h.pread(4096, 4096) == data[4096:8192]
    with pytest.raises(nbd.Error) as e:
        h.pwrite(b"x" * 4096, 0)
    assert e.value.errno == "EPERM"        # EROFS in the plugin, NBD_EPERM on the wire
    assert path.read_bytes() == data


@pytest.fixture
def cert(tmp_path):
    crt, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True,
                   timeout=60)
    return crt, key


def test_tls_cafile_insecure_and_refused(disk, servers, connect, nbdkit_proc, cert):
    path, data = disk
    crt, key = cert
    srv = servers(path, ["--tls-cert", str(crt), "--tls-key", str(key)])
    url = srv.url.replace("http://", "https://")
    h = connect(url, f"cafile={crt}")
    assert h.pread(8192, 100) == data[100:8292]
    h2 = connect(url, "insecure=true")
    assert h2.pread(512, 0) == data[:512]
    k = nbdkit_proc(url, "retries=0")          # system CAs: the self-signed cert fails
    with pytest.raises(nbd.Error):
        k.handle().pread(512, 0)
    k.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in k.log.read_text()
