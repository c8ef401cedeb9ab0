"""In-process checks of the small pieces: listing pages, tokens, preconditions, redaction,
the credentials file."""

from __future__ import annotations

from email.message import Message

import pytest

from http_disk_server.redact import redact_target
from http_disk_server.s3 import conditions, listing
from http_disk_server.s3.credentials import Credentials
from http_disk_server.s3.errors import S3Error


class _Obj:
    def __init__(self, key: str) -> None:
        self.key = key


def _walk(keys: list[str], **kw) -> list[str]:
    """Every entry over all pages of size 1..3, checked to be the same."""
    objs = [_Obj(k) for k in sorted(keys, key=str.encode)]
    seen_all = None
    for size in (1, 2, 3, 1000):
        q = listing.ListQuery(max_keys=size, **kw)
        seen: list[str] = []
        while True:
            page = listing.paginate(objs, q)
            seen += [o.key for o in page.contents] + page.prefixes
            if not page.truncated:
                break
            token = listing.encode_token(page.last_entry)
            q = listing.ListQuery(max_keys=size, after_entry=listing.decode_token(token),
                                  token=token, **kw)
        # within a page, keys come before common prefixes (as on S3): compare in key order
        assert len(seen) == len(set(seen)), (size, seen)
        seen = sorted(seen, key=str.encode)
        assert seen_all is None or seen == seen_all, size
        seen_all = seen
    return seen_all


def test_pages_never_repeat_or_skip():
    keys = ["a", "a/b", "a/c/d", "a-b", "a0", "b/x", "b/y", "c", "\u00e9/1", "z/z/z"]
    assert _walk(keys) == sorted(keys, key=str.encode)
    assert _walk(keys, delimiter="/") == ["a", "a-b", "a/", "a0", "b/", "c", "z/",
                                          "\u00e9/"]
    assert _walk(keys, prefix="a/", delimiter="/") == ["a/b", "a/c/"]
    assert _walk(keys, start_after="a0") == ["b/x", "b/y", "c", "z/z/z", "\u00e9/1"]


def test_tokens():
    assert listing.decode_token(listing.encode_token("x/\u00e9 y")) == "x/\u00e9 y"
    for bad in ("", "!!!", "e30", "eyJ2IjoxfQ"):
        with pytest.raises(S3Error):
            listing.decode_token(bad)


def test_preconditions_follow_rfc_9110_precedence():
    etag, mtime = '"abc"', 1_000_000.7

    def check(**headers: str):
        m = Message()
        for k, v in headers.items():
            m[k.replace("_", "-")] = v
        return conditions.check(m, etag, mtime)

    at = conditions.http_date(mtime)          # second resolution: not modified since
    before = conditions.http_date(mtime - 10)
    assert check() is None
    assert check(If_Match='"x", "abc"') is None
    assert check(If_Match="abc", If_Unmodified_Since=before) is None   # If-Match wins
    assert check(If_Unmodified_Since=at) is None
    assert check(If_Modified_Since=at) == conditions.NOT_MODIFIED
    assert check(If_Modified_Since=before) is None
    assert check(If_None_Match='W/"abc"') == conditions.NOT_MODIFIED
    assert check(If_None_Match='"zzz"', If_Modified_Since=at) is None  # If-None-Match wins
    assert check(If_Modified_Since="not a date") is None
    for bad in (dict(If_Match='"x"'), dict(If_Unmodified_Since=before)):
        with pytest.raises(S3Error) as e:
            check(**bad)
        assert e.value.status == 412
    assert conditions.byte_range("bytes=0-1,5-6", 100) is None
    assert conditions.byte_range("items=0-1", 100) is None
    assert conditions.byte_range("bytes=-10", 100) == (90, 99)
    with pytest.raises(S3Error) as e:
        conditions.byte_range("bytes=100-", 100)
    assert e.value.code == "InvalidRange" and e.value.headers["Content-Range"] == "bytes */100"


def test_redaction():
    line = ("GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F2026&"
            "X-Amz-Signature=abcdef&x=1 HTTP/1.1")
    out = redact_target(line)
    assert "abcdef" not in out and "AKID" not in out and "x=1" in out
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in out


def test_credentials_file(tmp_path):
    p = tmp_path / "c"
    p.write_text("[a]\naws_access_key_id = K1\naws_secret_access_key = S/1+\n"
                 "[b]\naws_access_key_id=K2\naws_secret_access_key=S2\n")
    c = Credentials.from_file(str(p))
    assert (c.secret("K1"), c.secret("K2"), c.secret("K3")) == ("S/1+", "S2", None)
    assert "S/1+" not in repr(c)
    p.write_text("aws_secret_access_key = TOPSECRET\n")
    with pytest.raises(ValueError) as e:
        Credentials.from_file(str(p))
    assert "TOPSECRET" not in str(e.value)
    p.write_text("[empty]\n")
    with pytest.raises(ValueError, match="needs both"):
        Credentials.from_file(str(p))
