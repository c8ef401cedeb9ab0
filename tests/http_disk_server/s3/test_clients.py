"""Clients nobody here wrote: awscli, the minio SDK, nbdkit's S3 plugin, curl on a
presigned URL. Each reads through the gateway and is compared with the archive inputs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import urllib3
from minio import Minio

from nbdsuite.launch import nbdkit_env

from .conftest import BUCKET, REGION, client


def _aws_env(gateway) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(gateway.credentials), AWS_CONFIG_FILE=os.devnull,
               AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
               AWS_RETRY_MODE="standard", AWS_MAX_ATTEMPTS="1")
    return env


def _aws(gateway, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    # Debian's awscli package, whatever else is first on PATH
    return subprocess.run(["/usr/bin/aws", "--endpoint-url", gateway.url, *args],
                          env=_aws_env(gateway), capture_output=True, text=True,
                          timeout=timeout)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_awscli_ls_cp_and_ranged_get(gateway, tmp_path):
    r = _aws(gateway, "s3", "ls", f"s3://{BUCKET}/")
    assert r.returncode == 0, r.stderr
    assert "PRE vm.hxz/" in r.stdout and "raw.img" in r.stdout
    r = _aws(gateway, "s3", "ls", f"s3://{BUCKET}/lots/", "--recursive")
    assert r.returncode == 0, r.stderr
    assert sum(1 for line in r.stdout.splitlines() if "/files/" in line) == 1100
    out = tmp_path / "disk.cp"
    r = _aws(gateway, "s3", "cp", f"s3://{BUCKET}/vm.hxz/disk", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert _sha(out.read_bytes()) == _sha(gateway.bucket.objects["vm.hxz/disk"])
    part = tmp_path / "part"
    r = _aws(gateway, "s3api", "get-object", "--bucket", BUCKET, "--key", "raw.img",
             "--range", "bytes=1048570-1048599", str(part))
    assert r.returncode == 0, r.stderr
    assert '"ContentRange": "bytes 1048570-1048599/' in r.stdout
    assert part.read_bytes() == gateway.bucket.objects["raw.img"][1048570:1048600]
    r = _aws(gateway, "s3", "cp", str(part), f"s3://{BUCKET}/uploaded")
    assert r.returncode != 0 and "AccessDenied" in r.stderr


def _minio(gateway, keys, region: str | None) -> Minio:
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=False)
    return Minio(gateway.url.split("//", 1)[1], access_key=keys.access,
                 secret_key=keys.secret, secure=False, region=region, http_client=http)


def test_minio_sdk(gateway, tmp_path):
    for region in (None, REGION):   # without a region, minio asks GetBucketLocation first
        m = _minio(gateway, gateway.keys, region)
        assert m.bucket_exists(BUCKET) and not m.bucket_exists("other-bucket")
        names = [o.object_name for o in m.list_objects(BUCKET, prefix="docs.hxz/files/",
                                                       recursive=True)]
        assert names == sorted(k for k in gateway.bucket.objects
                               if k.startswith("docs.hxz/files/"))
        top = sorted(o.object_name for o in m.list_objects(BUCKET))
        assert top == ["base.hxz/", "child.hxz/", "docs.hxz/", "lots/", "raw.img", "vm.hxz/"]
        data = gateway.bucket.objects["child.hxz/disk"]
        assert m.stat_object(BUCKET, "child.hxz/disk").size == len(data)
        r = m.get_object(BUCKET, "child.hxz/disk", offset=299_000, length=10_000)
        try:
            assert r.read() == data[299_000:309_000]
        finally:
            r.close()
            r.release_conn()
    out = tmp_path / "vm.disk"
    m.fget_object(BUCKET, "vm.hxz/disk", str(out))
    assert _sha(out.read_bytes()) == _sha(gateway.bucket.objects["vm.hxz/disk"])


def test_nbdkit_s3_plugin_reads_the_snapshot_disk(gateway, tmp_path):
    """nbdkit's own S3 plugin (Debian's Python and boto3) through the gateway, read with
    nbdcopy. Keys go through the environment, never argv."""
    for key in ("vm.hxz/disk", "child.hxz/disk", "raw.img"):
        out = tmp_path / (key.replace("/", "_") + ".out")
        env = nbdkit_env(_aws_env(gateway))
        env.update(AWS_ACCESS_KEY_ID=gateway.keys.access,
                   AWS_SECRET_ACCESS_KEY=gateway.keys.secret)
        env.pop("AWS_SHARED_CREDENTIALS_FILE")
        r = subprocess.run(["nbdkit", "-U", "-", "-r", "S3", f"endpoint-url={gateway.url}",
                            f"bucket={BUCKET}", f"key={key}", "--run",
                            f'nbdcopy "$uri" {out}'],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert _sha(out.read_bytes()) == _sha(gateway.bucket.objects[key]), key


def _curl(url: str, *args: str) -> tuple[int, bytes]:
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}",
                        *args, url], capture_output=True, timeout=30)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code), body


def test_presigned_url_with_curl_and_after_expiry(gateway):
    s3 = client(gateway.url, gateway.keys)
    key = "docs.hxz/files/sub dir/a b+c~d!'().bin"
    data = gateway.bucket.objects[key]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key},
                                    ExpiresIn=3)
    assert "X-Amz-Signature=" in url
    assert _curl(url) == (200, data)
    assert _curl(url, "-r", "100-199") == (206, data[100:200])
    head = subprocess.run(["curl", "-sS", "--max-time", "20", "-I", url], capture_output=True,
                          text=True, timeout=30)
    assert head.stdout.startswith("HTTP/1.1 403")  # signed for GET, not HEAD
    # tampering with the key in the URL
    status, body = _curl(url.replace("a%20b", "a%20c"))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body = _curl(url)
        if status != 200:
            break
        time.sleep(0.5)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert b"Request has expired" in body
