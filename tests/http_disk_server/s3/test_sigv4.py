"""The verifier against botocore's signer: the same requests, signed by botocore, must
verify, give botocore's signature, and fail once anything signed is changed."""

from __future__ import annotations

import re
from email.message import Message
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from http_disk_server.s3 import sigv4
from http_disk_server.s3.credentials import Credentials as KeyFile
from http_disk_server.s3.errors import S3Error

ACCESS, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOST = "127.0.0.1:8443"

KEYS = ["raw.img", "vm.hxz/disk", "docs.hxz/files/sub dir/a b+c~d!'().bin",
        "caf\u00e9/\u65e5\u672c.txt", "a%2Fb/100%.txt", "x=y&z;w,q@r$s.bin"]


def _incoming(req: AWSRequest) -> sigv4.Incoming:
    url = urlsplit(req.url)
    headers = Message()
    headers["Host"] = url.netloc
    for k, v in req.headers.items():
        headers[k] = v if isinstance(v, str) else v.decode()
    return sigv4.Incoming(req.method, url.path, sigv4.parse_query(url.query), headers)


def _request(method: str, key: str, query: str = "", headers: dict | None = None
             ) -> AWSRequest:
    from urllib.parse import quote
    url = f"http://{HOST}/bucket/{quote(key, safe='/~')}" + (f"?{query}" if query else "")
    return AWSRequest(method=method, url=url, headers=headers or {})


def _header_signed(method: str, key: str, query: str = "", headers: dict | None = None,
                   unsigned: bool = False) -> AWSRequest:
    req = _request(method, key, query, headers)
    if unsigned:
        req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", "eu-west-3").add_auth(req)
    return req


def _verifier(clock=None) -> sigv4.Verifier:
    kw = {"clock": clock} if clock else {}
    return sigv4.Verifier(KeyFile({ACCESS: SECRET}), anonymous=False, **kw)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("unsigned", [False, True])
def test_header_signatures_match_botocore(key, unsigned):
    req = _header_signed("GET", key, "response-content-type=text%2Fplain&x-id=GetObject",
                         {"Range": "bytes=0-99", "If-Match": '"abc"'}, unsigned)
    inc = _incoming(req)
    assert _verifier().check(inc) == ACCESS
    # and the same signature value, not just "some" accepted one
    auth = req.headers["Authorization"]
    theirs = re.search(r"Signature=([0-9a-f]{64})", auth).group(1)
    signed = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")
    creq = sigv4.canonical_request(inc, signed, req.headers["X-Amz-Content-SHA256"])
    date = req.headers["X-Amz-Date"]
    scope = [date[:8], "eu-west-3", "s3", "aws4_request"]
    sts = sigv4.string_to_sign(date, "/".join(scope), creq)
    assert sigv4.signature(SECRET, scope, sts) == theirs


@pytest.mark.parametrize("key", KEYS)
def test_presigned_urls_match_botocore(key):
    req = _request("GET", key, "versionId=null")
    S3SigV4QueryAuth(Credentials(ACCESS, SECRET), "s3", "us-east-1", expires=300).add_auth(req)
    assert "X-Amz-Signature=" in req.url
    assert _verifier().check(_incoming(req)) == ACCESS


def _error(req: sigv4.Incoming, verifier: sigv4.Verifier | None = None) -> S3Error:
    with pytest.raises(S3Error) as e:
        (verifier or _verifier()).check(req)
    return e.value


def test_any_change_breaks_the_signature():
    req = _header_signed("GET", "vm.hxz/disk", "", {"Range": "bytes=0-99"})
    good = _incoming(req)
    changes = []
    for name, value in [("Range", "bytes=0-100"), ("Host", "127.0.0.1:8444")]:
        h = Message()
        for k, v in good.headers.items():
            h[k] = value if k == name else v
        changes.append(sigv4.Incoming("GET", good.raw_path, good.query, h))
    changes.append(sigv4.Incoming("HEAD", good.raw_path, good.query, good.headers))
    changes.append(sigv4.Incoming("GET", "/bucket/vm.hxz/memory", good.query, good.headers))
    changes.append(sigv4.Incoming("GET", good.raw_path, [("partNumber", "1")], good.headers))
    for bad in changes:
        e = _error(bad)
        assert (e.status, e.code) == (403, "SignatureDoesNotMatch")
        assert e.extra["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
        assert SECRET not in str(e.extra)
    wrong = sigv4.Verifier(KeyFile({ACCESS: SECRET + "x"}), anonymous=False)
    assert _error(good, wrong).code == "SignatureDoesNotMatch"
    unknown = sigv4.Verifier(KeyFile({"AKIDOTHER": SECRET}), anonymous=False)
    assert _error(good, unknown).code == "InvalidAccessKeyId"


def test_clock_skew_and_expiry():
    req = _incoming(_header_signed("GET", "raw.img"))
    signed_at = sigv4.amz_to_epoch(req.headers["X-Amz-Date"])
    assert _verifier(lambda: signed_at + 14 * 60).check(req) == ACCESS
    for shift in (16 * 60, -16 * 60):
        e = _error(req, _verifier(lambda s=shift: signed_at + s))
        assert (e.status, e.code) == (403, "RequestTimeTooSkewed")
    pre = _request("GET", "raw.img")
    S3SigV4QueryAuth(Credentials(ACCESS, SECRET), "s3", "us-east-1", expires=60).add_auth(pre)
    pre_in = _incoming(pre)
    at = sigv4.amz_to_epoch(dict(pre_in.query)["X-Amz-Date"])
    assert _verifier(lambda: at + 59).check(pre_in) == ACCESS
    e = _error(pre_in, _verifier(lambda: at + 61))
    assert (e.status, e.code, e.message) == (403, "AccessDenied", "Request has expired")


def test_malformed_authorization():
    good = _incoming(_header_signed("GET", "raw.img"))

    def with_headers(**changes: str | None) -> sigv4.Incoming:
        h = Message()
        for k, v in good.headers.items():
            if k.lower().replace("-", "_") not in changes:
                h[k] = v
        for k, v in changes.items():
            if v is not None:
                h[k.replace("_", "-")] = v
        return sigv4.Incoming("GET", good.raw_path, good.query, h)

    auth = good.headers["Authorization"]
    cases = [
        (dict(authorization="AWS AKIDEXAMPLE:abc"), 400, "InvalidArgument"),
        (dict(authorization="AWS4-HMAC-SHA256 Credential=x"), 400,
         "AuthorizationHeaderMalformed"),
        (dict(authorization=auth.replace("/s3/", "/ec2/")), 400,
         "AuthorizationHeaderMalformed"),
        (dict(authorization=auth.replace("SignedHeaders=host;", "SignedHeaders=")), 400,
         "AuthorizationHeaderMalformed"),
        (dict(x_amz_date=None), 403, "AccessDenied"),
        (dict(x_amz_date="yesterday"), 403, "AccessDenied"),
        (dict(x_amz_content_sha256=None), 400, "InvalidRequest"),
        (dict(x_amz_content_sha256="nope"), 400, "InvalidArgument"),
        (dict(x_amz_content_sha256="0" * 64), 400, "XAmzContentSHA256Mismatch"),
    ]
    for changes, status, code in cases:
        e = _error(with_headers(**changes))
        assert (e.status, e.code) == (status, code), changes
    anonymous = sigv4.Incoming("GET", "/bucket/raw.img", [], Message())
    assert _error(anonymous).code == "AccessDenied"
    assert sigv4.Verifier(None, anonymous=True).check(anonymous) is None
    # signed requests to a gateway without keys: no key can be right
    assert _error(good, sigv4.Verifier(None, anonymous=True)).code == "InvalidAccessKeyId"


def test_malformed_presigned_queries():
    pre = _request("GET", "raw.img")
    S3SigV4QueryAuth(Credentials(ACCESS, SECRET), "s3", "us-east-1", expires=60).add_auth(pre)
    good = _incoming(pre)

    def with_query(**changes: str | None) -> sigv4.Incoming:
        q = [(k, v) for k, v in good.query if k not in changes]
        q += [(k, v) for k, v in changes.items() if v is not None]
        return sigv4.Incoming("GET", good.raw_path, q, good.headers)

    for changes in [{"X-Amz-Expires": "soon"}, {"X-Amz-Expires": "604801"},
                    {"X-Amz-Date": None}, {"X-Amz-Algorithm": "AWS4-HMAC-SHA1"},
                    {"X-Amz-Credential": "AKIDEXAMPLE/2020"}]:
        e = _error(with_query(**changes))
        assert (e.status, e.code) == (400, "AuthorizationQueryParametersError"), changes
    e = _error(with_query(**{"X-Amz-Signature": "0" * 64}))
    assert e.code == "SignatureDoesNotMatch"
    e = _error(with_query(AWSAccessKeyId=ACCESS, Signature="abc"))
    assert (e.status, e.code) == (400, "InvalidRequest")
