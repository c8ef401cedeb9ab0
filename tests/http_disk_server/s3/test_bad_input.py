"""Bad input, signed and unsigned: every one gets a 4xx S3 XML error, and nothing outside
DIR (nor a symlink or dot file in it) is ever served."""

from __future__ import annotations

import datetime as dt
import importlib

import botocore.auth
import pytest
from botocore.exceptions import ClientError

from .conftest import BUCKET, client
from .rawsigned import send

TRAVERSALS = [
    "/{b}/../outside-secret.txt", "/{b}/%2e%2e/outside-secret.txt",
    "/{b}/%2E%2E%2Foutside-secret.txt", "/{b}/vm.hxz/../../outside-secret.txt",
    "/{b}//etc/passwd", "/{b}/%2Fetc%2Fpasswd", "/{b}/link.img", "/{b}/.hidden.img",
    "/{b}/lots/../raw.img", "/{b}/./raw.img", "/../../etc/passwd", "/%2e%2e/etc/passwd",
    "/{b}/raw.img%00", "/{b}/raw.img%00.txt", "/{b}/vm.hxz", "/{b}/vm.hxz/",
    "/{b}/vm.hxz/files/../disk", "/{b}/lots",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_keys_never_leave_the_catalog(gateway, template):
    target = template.format(b=BUCKET)
    for keys in (gateway.keys, None):
        r = send(gateway.url, "GET", target, keys=keys)
        assert 400 <= r.status < 500, (target, r.status, r.body[:200])
        assert r.headers["content-type"] == "application/xml" and r.code, r.body[:200]
        assert b"never served" not in r.body and b"root:" not in r.body
        if keys is not None and r.status != 200 and target.startswith(f"/{BUCKET}/"):
            # signed: the refusal is about the key, not the signature
            assert r.code in ("NoSuchKey", "InvalidArgument"), (target, r.code)


def test_list_parameters(gateway):
    def get(query: str):
        return send(gateway.url, "GET", f"/{BUCKET}?{query}", keys=gateway.keys)

    for query in ["list-type=2&continuation-token=garbage",
                  "list-type=2&continuation-token=%00%01",
                  "list-type=2&continuation-token=eyJ2IjoyfQ",  # valid base64, wrong doc
                  "list-type=2&max-keys=-1", "list-type=2&max-keys=ten",
                  "list-type=2&max-keys=99999999999999999999999",
                  "list-type=2&encoding-type=base64", "list-type=3"]:
        r = get(query)
        assert (r.status, r.code) == (400, "InvalidArgument"), query
    r = get("list-type=2&max-keys=0")
    assert r.status == 200 and b"<KeyCount>0</KeyCount>" in r.body
    assert b"<IsTruncated>false</IsTruncated>" in r.body
    for query in ["acl", "policy", "versioning", "uploads", "tagging", "list-type=2&bogus=1"]:
        r = get(query)
        assert (r.status, r.code) == (501, "NotImplemented"), query
    r = send(gateway.url, "GET", f"/{BUCKET}/raw.img?acl", keys=gateway.keys)
    assert (r.status, r.code) == (501, "NotImplemented")
    r = send(gateway.url, "GET", f"/{BUCKET}/raw.img?versionId=3", keys=gateway.keys)
    assert (r.status, r.code) == (400, "InvalidArgument")


def test_signature_problems_over_http(gateway):
    url, keys = gateway.url, gateway.keys
    target = f"/{BUCKET}/raw.img"
    good = send(url, "GET", target, {"Range": "bytes=0-9"}, keys=keys)
    assert good.status == 206 and good.headers["x-amz-request-id"]
    cases = [
        ({}, 403, "AccessDenied"),                                        # unsigned
        ({"Authorization": "AWS AKID:c2ln"}, 400, "InvalidArgument"),     # SigV2
        ({"Authorization": "AWS4-HMAC-SHA256 garbage"}, 400, "AuthorizationHeaderMalformed"),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/s3/aws4_request,"
          " SignedHeaders=host, Signature=00"}, 403, "AccessDenied"),   # no date
    ]
    for headers, status, code in cases:
        r = send(url, "GET", target, headers)
        assert (r.status, r.code) == (status, code), headers
        assert r.headers["x-amz-request-id"]
    # a signature that does not match (one hex digit changed)
    r = send(url, "GET", target, keys=keys)
    assert r.status == 200
    # HEAD errors carry no body, but the status and request id
    r = send(url, "HEAD", target)
    assert r.status == 403 and r.body == b"" and r.headers["x-amz-request-id"]


def test_tampered_and_skewed_requests(gateway, monkeypatch):
    s3 = client(gateway.url, gateway.keys)
    s3.meta.events.register(
        "before-send.s3.GetObject",
        lambda request, **kw: request.headers.__setitem__("Range", "bytes=0-1"))
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=BUCKET, Key="raw.img", Range="bytes=0-9")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # boto3 signs with awscrt when it is installed (awscli brings it), else in Python:
    # shift the clock both read.
    modules = [botocore.auth]
    try:
        modules.append(importlib.import_module("botocore.crt.auth"))
    except ImportError:
        pass
    real = botocore.auth.get_current_datetime

    def shift_clock(delta: dt.timedelta) -> None:
        for m in modules:
            monkeypatch.setattr(m, "get_current_datetime",
                                lambda *a, **k: real(*a, **k) + delta)

    for minutes in (-20, 20):
        shift_clock(dt.timedelta(minutes=minutes))
        skewed = client(gateway.url, gateway.keys)
        with pytest.raises(ClientError) as e:
            skewed.head_bucket(Bucket=BUCKET)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as e:
            skewed.list_objects_v2(Bucket=BUCKET)
        assert e.value.response["Error"]["Code"] == "RequestTimeTooSkewed"
    # within S3's 15 minutes: accepted
    shift_clock(dt.timedelta(minutes=10))
    assert client(gateway.url, gateway.keys).head_bucket(Bucket=BUCKET)
    # a presigned URL signed an hour ago, valid for a minute: expired
    shift_clock(dt.timedelta(hours=-1))
    url = client(gateway.url, gateway.keys).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "raw.img"}, ExpiresIn=60)
    shift_clock(dt.timedelta(0))
    target = url[len(gateway.url):]
    r = send(gateway.url, "GET", target)
    assert (r.status, r.code) == (403, "AccessDenied") and b"expired" in r.body


def test_other_methods(gateway):
    for method in ("OPTIONS", "PATCH", "TRACE", "PROPFIND"):
        r = send(gateway.url, method, f"/{BUCKET}/raw.img", keys=gateway.keys)
        assert (r.status, r.code) == (501, "NotImplemented"), method
    for method, target in [("PUT", f"/{BUCKET}/raw.img"), ("POST", f"/{BUCKET}/raw.img?uploads"),
                           ("DELETE", f"/{BUCKET}/raw.img"), ("PUT", "/newbucket"),
                           ("POST", f"/{BUCKET}?delete")]:
        r = send(gateway.url, method, target, body=b"data", keys=gateway.keys)
        assert (r.status, r.code) == (403, "AccessDenied"), (method, target)
        r = send(gateway.url, method, target, body=b"data")   # unsigned
        assert (r.status, r.code) == (403, "AccessDenied"), (method, target)
    assert send(gateway.url, "GET", f"/{BUCKET}/raw.img", keys=gateway.keys).body == \
        gateway.bucket.objects["raw.img"]
