"""The gateway as a process: ETags follow the archive, anonymous access, start-up
refusals, TLS, decompression errors, and SIGTERM finishing the reads in flight."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import boto3
import botocore
import hexz
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.archives import corrupt
from tests.support.diskserver import launch, start_server

from .conftest import BUCKET, REGION, client, make_keys, write_credentials
from .rawsigned import open_slow_get, send


def _pack(src: Path, data: bytes, out: Path) -> None:
    """Pack ``data`` as disk.img into ``out``, replacing it atomically."""
    src.mkdir(exist_ok=True)
    (src / "disk.img").write_bytes(data)
    tmp = out.with_name(out.name + ".tmp")
    hexz.pack(str(src / "disk.img"), str(tmp), compression="lz4")
    os.replace(tmp, out)


@pytest.fixture
def small(tmp_path):
    root = tmp_path / "dir"
    root.mkdir()
    keys = make_keys()
    creds = write_credentials(tmp_path / "creds", keys)
    return root, keys, creds


def test_etag_changes_with_the_archive_and_if_match_catches_it(small, tmp_path):
    root, keys, creds = small
    first, second = os.urandom(300_000), os.urandom(300_000)
    _pack(tmp_path / "src", first, root / "vm.hxz")
    s = start_server(["--s3", str(root), "--bucket", BUCKET, "--credentials", str(creds)],
                     tmp_path)
    try:
        s3 = client(s.url, keys)
        h1 = s3.head_object(Bucket=BUCKET, Key="vm.hxz/disk")
        assert h1["ETag"] == s3.head_object(Bucket=BUCKET, Key="vm.hxz/disk")["ETag"]
        assert s3.get_object(Bucket=BUCKET, Key="vm.hxz/disk")["Body"].read() == first
        time.sleep(0.01)   # a distinct mtime even on coarse clocks is not needed: the inode is
        _pack(tmp_path / "src", second, root / "vm.hxz")
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=BUCKET, Key="vm.hxz/disk", IfMatch=h1["ETag"],
                          Range="bytes=0-99")
        assert e.value.response["Error"]["Code"] == "PreconditionFailed"
        g = s3.get_object(Bucket=BUCKET, Key="vm.hxz/disk")
        assert g["ETag"] != h1["ETag"] and g["Body"].read() == second
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="vm.hxz/disk")["Contents"][0]
        assert listed["ETag"] == g["ETag"]
        # new and removed files show at once in listings
        (root / "new.img").write_bytes(b"n" * 4096)
        keys_now = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert "new.img" in keys_now
        (root / "vm.hxz").unlink()
        keys_now = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert keys_now == ["new.img"]
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=BUCKET, Key="vm.hxz/disk")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    finally:
        assert s.stop() == 0, s.log_text()


def test_anonymous_must_be_asked_for(small, tmp_path):
    root, keys, creds = small
    (root / "a.img").write_bytes(b"a" * 1000)
    p = launch(["--s3", str(root), "--port", "0"], tmp_path, "noauth")
    assert p.wait(15) == 1
    err = (tmp_path / "noauth.stderr").read_text()
    assert "--credentials" in err and "--s3-anonymous" in err and len(err.splitlines()) == 1
    s = start_server(["--s3", str(root), "--s3-anonymous"], tmp_path, "anon")
    try:
        anon = boto3.client("s3", endpoint_url=s.url, region_name=REGION,
                            config=Config(signature_version=botocore.UNSIGNED,
                                          retries={"max_attempts": 1}, read_timeout=15,
                                          connect_timeout=5))
        assert anon.list_buckets()["Buckets"][0]["Name"] == "images"
        assert anon.get_object(Bucket="images", Key="a.img")["Body"].read() == b"a" * 1000
        with pytest.raises(ClientError) as e:   # overrides need a signature, as on S3
            anon.get_object(Bucket="images", Key="a.img", ResponseContentType="text/plain")
        assert e.value.response["Error"]["Code"] == "InvalidRequest"
        with pytest.raises(ClientError) as e:   # no keys: a signed request cannot verify
            client(s.url, keys).list_buckets()
        assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
        with pytest.raises(ClientError) as e:
            anon.put_object(Bucket="images", Key="a.img", Body=b"b")
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert (root / "a.img").read_bytes() == b"a" * 1000
    finally:
        assert s.stop() == 0, s.log_text()


def _get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, str, bytes]:
    import base64
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " +
                       base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_metrics_beside_the_bucket_behind_basic_auth(small, tmp_path):
    # A scraper cannot sign SigV4: with --user, GET /metrics is served behind Basic auth,
    # and every other request is still S3's, signed.
    root, keys, creds = small
    (root / "a.img").write_bytes(b"a" * 5000)
    (tmp_path / "pw").write_text("scrape-secret\n")
    s = start_server(["--s3", str(root), "--bucket", BUCKET, "--credentials", str(creds),
                      "--user", "prom",
                      "--password-file", str(tmp_path / "pw")], tmp_path)
    try:
        url = s.url.rstrip("/") + "/metrics"
        assert _get(url)[0] == 401
        assert _get(url, ("prom", "wrong"))[0] == 401
        s3 = client(s.url, keys)
        assert s3.get_object(Bucket=BUCKET, Key="a.img")["Body"].read() == b"a" * 5000
        status, ctype, body = _get(url, ("prom", "scrape-secret"))
        assert status == 200 and ctype.startswith("text/plain"), body[:200]
        text = body.decode()
        assert "http_disk_server_requests_total" in text
        read = [ln for ln in text.splitlines()
                if ln.startswith("http_disk_server_read_bytes_total ")]
        assert read and float(read[0].split()[1]) >= 5000, text
        # Basic credentials are no way into the bucket.
        status, ctype, body = _get(s.url.rstrip("/") + f"/{BUCKET}/a.img",
                                   ("prom", "scrape-secret"))
        assert status == 400 and "xml" in ctype and b"<Code>" in body, body[:300]
    finally:
        assert s.stop() == 0, s.log_text()
    assert "scrape-secret" not in s.log_text()


def test_metrics_open_only_when_the_bucket_is_anonymous(small, tmp_path):
    root, keys, creds = small
    (root / "a.img").write_bytes(b"a" * 100)
    signed = start_server(["--s3", str(root), "--credentials", str(creds)], tmp_path, "signed")
    anon = start_server(["--s3", str(root), "--s3-anonymous"], tmp_path, "anon")
    try:
        # Signed-only and no --user: /metrics is an S3 path like any other (unsigned: 403).
        status, ctype, body = _get(signed.url.rstrip("/") + "/metrics")
        assert status == 403 and "xml" in ctype and b"AccessDenied" in body, body[:300]
        status, ctype, body = _get(anon.url.rstrip("/") + "/metrics")
        assert status == 200 and b"http_disk_server_requests_total" in body
    finally:
        assert signed.stop() == 0
        assert anon.stop() == 0


@pytest.mark.parametrize("args, needle", [
    (["--bucket", "Bad_Name"], "--bucket"),
    (["--user", "u", "--password-file", "{pw}", "--no-metrics"], "nothing to protect"),
    (["--bucket", "metrics", "--user", "u", "--password-file", "{pw}"],
     "would hide GET /metrics"),
    (["--credentials", "{missing}"], "cannot read --credentials"),
    (["--credentials", "{garbage}"], "not an AWS credentials file"),
    (["--credentials", "{halfkey}"], "needs both"),
])
def test_refused_starts(small, tmp_path, args, needle):
    root, keys, creds = small
    (tmp_path / "garbage").write_text(f"aws_secret_access_key = {keys.secret}\n")
    (tmp_path / "halfkey").write_text(f"[x]\naws_secret_access_key = {keys.secret}\n")
    for name in ("garbage", "halfkey"):
        (tmp_path / name).chmod(0o600)
    (tmp_path / "pw").write_text("pw\n")
    args = [a.format(missing=tmp_path / "none", garbage=tmp_path / "garbage",
                     halfkey=tmp_path / "halfkey", pw=tmp_path / "pw") for a in args]
    if "--credentials" not in args:
        args += ["--credentials", str(creds)]
    p = launch(["--s3", str(root), *args, "--port", "0"], tmp_path, "refused")
    assert p.wait(15) == 1
    err = (tmp_path / "refused.stderr").read_text()
    assert needle in err and len(err.splitlines()) == 1, err
    assert keys.secret not in err


def test_tls(small, tmp_path, cert):
    root, keys, creds = small
    data = os.urandom(100_000)
    (root / "disk.raw").write_bytes(data)
    crt, key = cert
    s = start_server(["--s3", str(root), "--credentials", str(creds), "--tls-cert", str(crt),
                      "--tls-key", str(key)], tmp_path)
    try:
        assert s.url.startswith("https://")
        s3 = boto3.client("s3", endpoint_url=s.url, aws_access_key_id=keys.access,
                          aws_secret_access_key=keys.secret, verify=str(crt),
                          config=Config(signature_version="s3v4", region_name=REGION,
                                        retries={"max_attempts": 1}, read_timeout=15,
                                        connect_timeout=5))
        assert s3.get_object(Bucket="images", Key="disk.raw", Range="bytes=5-")["Body"].read() \
            == data[5:]
    finally:
        assert s.stop() == 0, s.log_text()


def test_damaged_block_is_500_internal_error_never_wrong_bytes(small, tmp_path):
    root, keys, creds = small
    data = os.urandom(2 << 20)
    good = tmp_path / "good.hxz"
    (tmp_path / "in.img").write_bytes(data)
    hexz.pack(str(tmp_path / "in.img"), str(good), compression="lz4")
    _, _, hit = corrupt.flip_payload(good, root / "bad.hxz", 0)
    start, length = hit[0]
    s = start_server(["--s3", str(root), "--credentials", str(creds)], tmp_path)
    try:
        s3 = client(s.url, keys)
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="images", Key="bad.hxz/disk",
                          Range=f"bytes={start}-{start + length - 1}")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert e.value.response["Error"]["Code"] == "InternalError"
        rest = s3.get_object(Bucket="images", Key="bad.hxz/disk",
                             Range=f"bytes={start + length}-")["Body"].read()
        assert rest == data[start + length:]
        # a whole GET never hands out wrong bytes: an error status or a cut body
        try:
            body = s3.get_object(Bucket="images", Key="bad.hxz/disk")["Body"].read()
        except (ClientError, botocore.exceptions.BotoCoreError):
            body = None
        assert body is None or body == data
        assert body is None
    finally:
        assert s.stop() == 0, s.log_text()
    assert "bad.hxz" in s.log_text()   # the log names the damaged archive


def test_sigterm_finishes_reads_in_flight(small, tmp_path):
    root, keys, creds = small
    data = os.urandom(32 << 20)
    (root / "big.img").write_bytes(data)
    s = start_server(["--s3", str(root), "--credentials", str(creds)], tmp_path)
    # A signed GET whose reply we read slowly, with a small receive buffer.
    sock = open_slow_get(s.url, "/images/big.img", keys)
    got = sock.recv(65536)
    assert got.startswith(b"HTTP/1.1 200")
    os.kill(s.pid, signal.SIGTERM)
    time.sleep(0.5)
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    sock.close()
    assert s.proc.wait(20) == 0
    body = got.split(b"\r\n\r\n", 1)[1]
    assert len(body) == len(data) and body == data
    # and a new request after SIGTERM is not served
    r = None
    try:
        r = send(s.url.rstrip("/"), "GET", "/images/big.img", keys=keys)
    except OSError:
        pass
    assert r is None


def test_replaced_files_are_closed_not_leaked(small, tmp_path):
    """Each replacement of a served file or archive releases the old one once no request
    reads it: the server's open descriptors stay flat."""
    root, keys, creds = small
    _pack(tmp_path / "src", os.urandom(100_000), root / "vm.hxz")
    (root / "raw.img").write_bytes(os.urandom(50_000))
    s = start_server(["--s3", str(root), "--credentials", str(creds)], tmp_path)
    try:
        s3 = client(s.url, keys)

        def fds() -> int:
            return len(os.listdir(f"/proc/{s.pid}/fd"))

        def round_trip(i: int) -> None:
            data, raw = os.urandom(100_000), os.urandom(50_000)
            _pack(tmp_path / "src", data, root / "vm.hxz")
            tmp = root / ".raw.tmp"
            tmp.write_bytes(raw)
            os.replace(tmp, root / "raw.img")
            assert s3.get_object(Bucket="images", Key="vm.hxz/disk")["Body"].read() == data
            assert s3.get_object(Bucket="images", Key="raw.img")["Body"].read() == raw

        round_trip(0)
        before = fds()
        for i in range(1, 25):
            round_trip(i)
        assert fds() <= before + 2, (before, fds())
    finally:
        assert s.stop() == 0, s.log_text()


def test_a_read_in_flight_keeps_its_version_while_the_file_is_replaced(small, tmp_path):
    root, keys, creds = small
    old, new = os.urandom(24 << 20), os.urandom(24 << 20)
    (root / "big.img").write_bytes(old)
    s = start_server(["--s3", str(root), "--credentials", str(creds)], tmp_path)
    try:
        sock = open_slow_get(s.url, "/images/big.img", keys, close=True)
        got = sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200")
        tmp = root / ".big.tmp"
        tmp.write_bytes(new)
        os.replace(tmp, root / "big.img")
        s3 = client(s.url, keys)
        s3.list_objects_v2(Bucket="images")    # a rescan retires the old version
        assert s3.get_object(Bucket="images", Key="big.img", Range="bytes=0-99")[
            "Body"].read() == new[:100]
        while chunk := sock.recv(1 << 20):
            got += chunk
        sock.close()
        body = got.split(b"\r\n\r\n", 1)[1]
        assert len(body) == len(old) and body == old
    finally:
        assert s.stop() == 0, s.log_text()


def test_verify_hash_applies_to_every_archive(small, tmp_path):
    root, keys, creds = small
    data = os.urandom(700_000)
    _pack(tmp_path / "src", data, root / "vm.hxz")
    s = start_server(["--s3", str(root), "--credentials", str(creds), "--verify", "hash"],
                     tmp_path)
    try:
        s3 = client(s.url, keys)
        assert s3.get_object(Bucket="images", Key="vm.hxz/disk")["Body"].read() == data
    finally:
        assert s.stop() == 0, s.log_text()
    p = launch(["--disk", str(root / "vm.hxz"), "--credentials", str(creds), "--port", "0"],
               tmp_path, "mixed")
    assert p.wait(15) == 1
    assert "go with --s3" in (tmp_path / "mixed.stderr").read_text()
