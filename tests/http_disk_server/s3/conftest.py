"""A bucket directory built at run time, a gateway serving it, and S3 clients for it.

The inputs every archive is packed from (with PyPI hexz) are kept, so tests compare what
the gateway serves with them, never with what our own reader says.
"""

from __future__ import annotations

import os
import random
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import hexz
import pytest
from botocore.config import Config

from tests.support.diskserver import start_server

REGION = "us-east-1"
BUCKET = "vmstore"


@dataclass
class Keys:
    access: str
    secret: str


@dataclass
class BucketDir:
    root: Path
    #: object key -> the bytes it must serve (from the inputs, not from a reader)
    objects: dict[str, bytes] = field(default_factory=dict)
    outside: Path | None = None


def make_keys() -> Keys:
    # "/" and "+" in the secret: they must survive the credentials file and the HMAC.
    return Keys("AKID" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24) + "/+x")


def write_credentials(path: Path, keys: Keys, extra: Keys | None = None) -> Path:
    text = f"[default]\naws_access_key_id = {keys.access}\n" \
           f"aws_secret_access_key = {keys.secret}\n"
    if extra is not None:
        text += f"\n[other]\naws_access_key_id = {extra.access}\n" \
                f"aws_secret_access_key = {extra.secret}\n"
    path.write_text(text)
    path.chmod(0o600)
    return path


def build_bucket(base: Path, many: int = 1100) -> BucketDir:
    """raw.img, vm.hxz (disk + memory), docs.hxz (odd member names), lots/many.hxz
    (``many`` members), base.hxz and its thin child.hxz; plus a symlink out of DIR, a
    dot file and a file beside DIR, none of which may ever be served."""
    rnd = random.Random(1010)
    root = base / "bucket"
    root.mkdir()
    b = BucketDir(root)
    raw = rnd.randbytes(3 << 20) + bytes(1 << 20) + rnd.randbytes(12345)
    (root / "raw.img").write_bytes(raw)
    b.objects["raw.img"] = raw

    src = base / "vm-src"
    src.mkdir()
    # Over 8 MiB: boto3's download_file splits it into ranged parts.
    disk = rnd.randbytes(3 << 20) + bytes(4 << 20) + rnd.randbytes((2 << 20) + 4321)
    memory = rnd.randbytes(70_001)
    (src / "disk.img").write_bytes(disk)
    (src / "memory").write_bytes(memory)   # a root-level "memory" file is that stream
    hexz.pack(str(src), str(root / "vm.hxz"), compression="lz4")
    b.objects.update({"vm.hxz/disk": disk, "vm.hxz/memory": memory,
                      "vm.hxz/files/disk.img": disk, "vm.hxz/files/memory": memory})

    docs = base / "docs-src"
    (docs / "sub dir").mkdir(parents=True)
    members = {"notes.txt": b"hello from a member\n",
               "sub dir/a b+c~d!'().bin": rnd.randbytes(5000),
               "sub dir/caf\u00e9.json": b'{"ok": true}\n'}
    for name, data in members.items():
        (docs / name).write_bytes(data)
    hexz.pack(str(docs), str(root / "docs.hxz"), compression="zstd")
    b.objects.update({f"docs.hxz/files/{k}": v for k, v in members.items()})

    lots = base / "lots-src"
    for i in range(many):
        d = lots / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_bytes(b"member %d\n" % i)
        b.objects[f"lots/many.hxz/files/d{i % 7}/f{i:05d}.txt"] = b"member %d\n" % i
    (root / "lots").mkdir()
    hexz.pack(str(lots), str(root / "lots" / "many.hxz"), compression="lz4")

    base_img = rnd.randbytes(600_000)
    child_img = base_img[:300_000] + rnd.randbytes(4096) + base_img[304_096:]
    (base / "base.img").write_bytes(base_img)
    (base / "child.img").write_bytes(child_img)
    hexz.pack(str(base / "base.img"), str(root / "base.hxz"), compression="zstd")
    hexz.pack(str(base / "child.img"), str(root / "child.hxz"), base=str(root / "base.hxz"),
              compression="zstd")
    b.objects.update({"base.hxz/disk": base_img, "child.hxz/disk": child_img})

    b.outside = base / "outside-secret.txt"
    b.outside.write_bytes(b"never served\n")
    os.symlink(b.outside, root / "link.img")
    (root / ".hidden.img").write_bytes(b"dot files are not objects\n")
    return b


@dataclass
class Gateway:
    server: object
    url: str
    bucket: BucketDir
    keys: Keys
    other: Keys
    credentials: Path


def client(url: str, keys: Keys, **config: object):
    """boto3 S3 client for the gateway: SigV4, path style, no retries, bounded waits."""
    cfg = Config(signature_version="s3v4", region_name=REGION, connect_timeout=5,
                 read_timeout=30, retries={"max_attempts": 1, "mode": "standard"},
                 s3={"addressing_style": "path"}, **config)
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=keys.access,
                        aws_secret_access_key=keys.secret, config=cfg)


@pytest.fixture(scope="package")
def gateway(tmp_path_factory):
    """One gateway for the read-only tests of this package (nothing changes its DIR)."""
    base = tmp_path_factory.mktemp("s3")
    bucket = build_bucket(base)
    keys, other = make_keys(), make_keys()
    creds = write_credentials(base / "credentials", keys, other)
    s = start_server(["--s3", str(bucket.root), "--bucket", BUCKET, "--credentials",
                      str(creds), "-v"], base)
    yield Gateway(s, s.url.rstrip("/"), bucket, keys, other, creds)
    assert s.stop() == 0, s.log_text()
    log = s.log_text()
    # Secrets never reach the log; neither do presigned signatures.
    assert keys.secret not in log and other.secret not in log
    assert re.search(r"X-Amz-(Signature|Credential)=(?!\*\*\*)", log) is None


@pytest.fixture
def s3(gateway):
    return client(gateway.url, gateway.keys)
