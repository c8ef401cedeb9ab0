"""Servers for the remote-source tests: nginx folders, http-disk-server, a moto S3 server.

The moto server runs from its own virtual environment (``make moto-venv``, a prerequisite
of ``make test``): moto pulls a newer ``cryptography`` than Debian's ``python3-openssl``
works with, so the two never share an interpreter.  It binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from nbdsuite.launch import DiskServerProcess, free_port

REPO = Path(__file__).resolve().parents[2]
MOTO_SERVER = REPO / ".venv-moto" / "bin" / "moto_server"
BUCKET = "hexz-images"
REGION = "us-east-1"


def served_copy(src: Path, folder: Path, name: str | None = None) -> Path:
    """Copy ``src`` into a served folder (a new inode: the catalogue stays untouched)."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def replace_file(path: Path, data: bytes) -> None:
    """Replace a served file the way a publisher does: a new file renamed over it."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.rename(tmp, path)
    # nginx's ETag is mtime-size: make sure the mtime moves even within one second.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def nginx_bytes(ng, path_suffix: str) -> tuple[int, int]:
    """(requests, body bytes) nginx sent for paths ending in ``path_suffix``."""
    rows = [r for r in ng.requests() if r[1].endswith(path_suffix)]
    return len(rows), sum(r[3] for r in rows)


@dataclass
class Moto:
    proc: subprocess.Popen
    endpoint: str
    access_key: str
    secret_key: str
    log: Path

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=access_key or self.access_key,
                            aws_secret_access_key=secret_key or self.secret_key,
                            config=Config(signature_version="s3v4"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_moto(workdir: Path, *, enforce_auth: bool = True) -> Moto:
    """A moto S3 server with one IAM user allowed s3:* and an empty bucket.

    With ``enforce_auth`` every request after the set-up must be signed with that user's
    key: moto then checks SigV4 signatures, so wrong credentials are refused."""
    assert MOTO_SERVER.exists(), f"{MOTO_SERVER} is missing: run `make moto-venv`"
    import boto3

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / f"moto-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)
    try:
        boot = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="boot",
                    aws_secret_access_key="boot")
        iam = boto3.client("iam", **boot)
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        iam.put_user_policy(UserName="reader", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        boto3.client("s3", **boot).create_bucket(Bucket=BUCKET)
        if enforce_auth:
            req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0",
                                         method="POST", headers={"Content-Type": "text/plain"})
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return Moto(proc, endpoint, key["AccessKeyId"], key["SecretAccessKey"], log)


@dataclass
class Gateway:
    """The suite's S3 gateway (``http-disk-server --s3``): every request must carry a SigV4
    signature (header or presigned query) made with ``access_key``/``secret_key``, checked
    by the gateway's own verifier.  Files not named ``*.hxz`` are objects holding their
    bytes as they are."""
    server: DiskServerProcess
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def presign(self, key: str, expires: int = 600) -> str:
        import boto3
        from botocore.config import Config
        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                          aws_access_key_id=self.access_key,
                          aws_secret_access_key=self.secret_key,
                          config=Config(signature_version="s3v4",
                                        s3={"addressing_style": "path"}))
        return s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket,
                                                               "Key": key}, ExpiresIn=expires)


def start_gateway(root: Path, workdir: Path, bucket: str = "vms") -> Gateway:
    workdir.mkdir(parents=True, exist_ok=True)
    # "/" and "+" in the secret, as real secrets have.
    access, secret = "AKID" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24) + "/+x"
    creds = workdir / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {access}\n"
                     f"aws_secret_access_key = {secret}\n")
    creds.chmod(0o600)
    srv = DiskServerProcess(["--s3", str(root), "--bucket", bucket, "--credentials", str(creds),
                             "-v"], workdir / "gateway.stderr", cwd=REPO)
    return Gateway(srv, srv.url.rstrip("/"), bucket, access, secret)
