"""S3Source (and presigned URLs through HttpSource) against a moto S3 server.

moto runs as its own process with signatures enforced: a request signed with a wrong
key is refused, as S3 would.  Archives are uploaded with boto3.
"""

from __future__ import annotations

import random

import pytest

from hxz.errors import BlockError, FormatError
from hxz.sources.http import HttpSource, NotFound
from hxz.sources.remote import open_source
from hxz.sources.s3 import S3Source
from hxz.sources.settings import RemoteSettings
from tests.remote.support import BUCKET, start_moto


class Logs(list):
    def __call__(self, msg: str) -> None:
        self.append(msg)


def s3_source(moto, key: str, **kw) -> S3Source:
    return S3Source(f"s3://{BUCKET}/{key}", endpoint_url=moto.endpoint,
                    access_key=kw.pop("access_key", moto.access_key),
                    secret_key=kw.pop("secret_key", moto.secret_key), log=Logs(), **kw)


def read_sequential(src, piece=300_000) -> bytes:
    return b"".join(src.pread(min(piece, src.size - o), o) for o in range(0, src.size, piece))


@pytest.mark.parametrize("name", ["random", "text", "multipage_zstd", "dir", "thin"])
def test_s3_bytes_with_credentials(cat, moto, name):
    data = cat[name].path.read_bytes()
    src = s3_source(moto, f"cat/{cat[name].path.name}")
    try:
        assert src.size == len(data) and src.name == f"s3://{BUCKET}/cat/{cat[name].path.name}"
        assert read_sequential(src) == data
        rng = random.Random(5)
        ranges = [(o, min(40_000, len(data) - o))
                  for o in (rng.randrange(len(data)) for _ in range(10))]
        assert src.preadv(ranges) == [data[o:o + n] for o, n in ranges]
    finally:
        src.close()


def test_s3_credentials_from_the_aws_chain(cat, moto, monkeypatch, tmp_path):
    """No access-key=: botocore's chain (here a shared credentials file and a profile)."""
    creds = tmp_path / "credentials"
    creds.write_text(f"[reader]\naws_access_key_id = {moto.access_key}\n"
                     f"aws_secret_access_key = {moto.secret_key}\n")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "reader")
    data = cat["text"].path.read_bytes()
    src = S3Source(f"s3://{BUCKET}/cat/text.hxz", endpoint_url=moto.endpoint, log=Logs())
    try:
        assert read_sequential(src) == data
    finally:
        src.close()


def test_wrong_credentials_one_line_at_open(moto):
    with pytest.raises(FormatError) as ei:
        s3_source(moto, "cat/text.hxz", secret_key="not-the-secret")
    msg = str(ei.value)
    assert "\n" not in msg and "refused the credentials" in msg, msg
    assert "not-the-secret" not in msg and moto.secret_key not in msg
    with pytest.raises(FormatError, match="refused the credentials"):
        s3_source(moto, "cat/text.hxz", access_key="AKIAUNKNOWN0000000000")


def test_missing_key_is_not_found(moto):
    with pytest.raises(NotFound) as ei:
        s3_source(moto, "cat/none.hxz")
    assert "no such object" in str(ei.value)


def test_replaced_object_is_an_error(cat, moto):
    data = cat["random"].path.read_bytes()
    s3 = moto.client()
    s3.put_object(Bucket=BUCKET, Key="mut/img.hxz", Body=data)
    src = s3_source(moto, "mut/img.hxz")
    try:
        assert src.pread(10_000, 0) == data[:10_000]
        s3.put_object(Bucket=BUCKET, Key="mut/img.hxz", Body=data[::-1])
        with pytest.raises(BlockError) as ei:
            src.pread(10_000, 2_000_000)
        assert "changed since it was opened" in str(ei.value)
    finally:
        src.close()


def test_presigned_url_as_plain_http(cat, tmp_path_factory):
    """A presigned GET URL (no HEAD allowed by its signature) works as url=.

    moto 5 answers presigned requests with 500 once signatures are enforced, so this
    server accepts every signature; the URL is still a real SigV4 presigned URL."""
    m = start_moto(tmp_path_factory.mktemp("moto-open"), enforce_auth=False)
    try:
        data = cat["mixed"].path.read_bytes()
        s3 = m.client()
        s3.put_object(Bucket=BUCKET, Key="p/img.hxz", Body=data)
        url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET,
                                                              "Key": "p/img.hxz"},
                                        ExpiresIn=600)
        assert "X-Amz-Signature=" in url
        src = open_source(url, RemoteSettings(), Logs())
        assert isinstance(src, HttpSource)
        assert src.name == f"{m.endpoint}/{BUCKET}/p/img.hxz"     # no signature
        assert read_sequential(src) == data
        src.close()
    finally:
        m.stop()
