"""boto3 against the gateway: listing, head, ranged gets, preconditions, download_file."""

from __future__ import annotations

import hashlib
import time
from email.utils import formatdate

import pytest
from botocore.exceptions import ClientError

from .conftest import BUCKET, client


def _code(e: pytest.ExceptionInfo) -> tuple[int, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def test_list_buckets_and_head_bucket(s3):
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == [BUCKET]
    h = s3.head_bucket(Bucket=BUCKET)
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="nosuchbucket")
    assert _code(e) == (404, "NoSuchBucket")


def test_paginator_lists_every_object_once(s3, gateway):
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET))
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert len(pages) >= 2 and all(p["KeyCount"] <= 1000 for p in pages)
    expected = set(gateway.bucket.objects)
    assert expected <= set(keys) and len(keys) == len(set(keys))
    assert keys == sorted(keys, key=lambda k: k.encode())
    for extra in set(keys) - expected:   # info.json and the streams not in the map
        assert extra.endswith(("/info.json", "/disk", "/memory")), extra
    # nothing outside DIR, no dot file, no symlink
    assert not any(k.startswith(("link", ".hidden")) or ".." in k for k in keys)
    sizes = {o["Key"]: o["Size"] for p in pages for o in p.get("Contents", [])}
    for key, data in gateway.bucket.objects.items():
        assert sizes[key] == len(data), key


def test_prefix_delimiter_and_paging_by_hand(s3):
    r = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [
        "base.hxz/", "child.hxz/", "docs.hxz/", "lots/", "vm.hxz/"]
    assert [o["Key"] for o in r["Contents"]] == ["raw.img"]
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="lots/many.hxz/files/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [
        f"lots/many.hxz/files/d{i}/" for i in range(7)]
    # max-keys counts common prefixes too, and the token resumes after the last one
    r1 = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/", MaxKeys=2)
    assert r1["IsTruncated"] and r1["KeyCount"] == 2
    r2 = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/", MaxKeys=10,
                            ContinuationToken=r1["NextContinuationToken"])
    assert [p["Prefix"] for p in r2["CommonPrefixes"]] == ["docs.hxz/", "lots/", "vm.hxz/"]
    assert not r2["IsTruncated"] and r2["ContinuationToken"] == r1["NextContinuationToken"]
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="vm.hxz/", StartAfter="vm.hxz/files/memory")
    assert [o["Key"] for o in r["Contents"]] == ["vm.hxz/info.json", "vm.hxz/memory"]
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="raw", FetchOwner=True)
    assert r["Contents"][0]["Owner"]["ID"]
    assert "Owner" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="raw")["Contents"][0]
    # huge max-keys is capped at 1000, as S3 does
    r = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=10**9)
    assert r["MaxKeys"] == 1000 and r["KeyCount"] == 1000 and r["IsTruncated"]
    # the old ListObjects with a marker
    r = s3.list_objects(Bucket=BUCKET, Prefix="vm.hxz/", Marker="vm.hxz/files/memory")
    assert [o["Key"] for o in r["Contents"]] == ["vm.hxz/info.json", "vm.hxz/memory"]


def test_odd_key_names_round_trip(s3, gateway):
    # boto3 asks for encoding-type=url and decodes: keys with spaces, '+', '~', UTF-8
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="docs.hxz/files/sub dir/")
    keys = [o["Key"] for o in r["Contents"]]
    assert keys == ["docs.hxz/files/sub dir/a b+c~d!'().bin",
                    "docs.hxz/files/sub dir/caf\u00e9.json"]
    for key in keys:
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == \
            gateway.bucket.objects[key]


def test_head_and_whole_get_match_inputs(s3, gateway):
    for key, data in gateway.bucket.objects.items():
        if "/files/d" in key and not key.endswith("00000.txt"):
            continue   # one member of the 1100 is enough here
        h = s3.head_object(Bucket=BUCKET, Key=key)
        assert h["ContentLength"] == len(data), key
        assert h["ETag"].startswith('"') and h["LastModified"]
        if len(data) < (4 << 20) or key == "vm.hxz/disk":
            got = s3.get_object(Bucket=BUCKET, Key=key)
            assert got["ETag"] == h["ETag"]
            assert hashlib.sha256(got["Body"].read()).digest() == \
                hashlib.sha256(data).digest(), key
    assert s3.head_object(Bucket=BUCKET, Key="docs.hxz/files/notes.txt")["ContentType"] == \
        "text/plain"
    info = s3.get_object(Bucket=BUCKET, Key="vm.hxz/info.json")
    assert info["ContentType"] == "application/json"
    assert b'"disk_size": %d' % len(gateway.bucket.objects["vm.hxz/disk"]) in \
        info["Body"].read()
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=BUCKET, Key="vm.hxz/nothing")
    assert _code(e)[0] == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=BUCKET, Key="vm.hxz/nothing")
    assert _code(e) == (404, "NoSuchKey")


@pytest.mark.parametrize("key", ["vm.hxz/disk", "raw.img", "child.hxz/disk"])
def test_every_range_form(s3, gateway, key):
    data = gateway.bucket.objects[key]
    n = len(data)
    for spec, lo, hi in [("0-0", 0, 1), ("65530-1048600", 65530, 1048601),
                         (f"{n - 5}-{n + 100}", n - 5, n), ("-4097", n - 4097, n),
                         (f"-{n + 10}", 0, n), ("300000-", 300000, n)]:
        hi = min(hi, n)
        r = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={spec}")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert r["ContentRange"] == f"bytes {lo}-{hi - 1}/{n}"
        assert r["ContentLength"] == hi - lo
        assert r["Body"].read() == data[lo:hi], spec
    h = s3.head_object(Bucket=BUCKET, Key=key, Range="bytes=10-19")
    assert h["ContentLength"] == 10 and h["ContentRange"] == f"bytes 10-19/{n}"
    for bad in [f"bytes={n}-", f"bytes={n + 7}-{n + 9}", "bytes=-0"]:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=BUCKET, Key=key, Range=bad)
        assert _code(e) == (416, "InvalidRange")
        headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["content-range"] == f"bytes */{n}"


def test_preconditions(s3, gateway):
    key = "docs.hxz/files/notes.txt"
    h = s3.head_object(Bucket=BUCKET, Key=key)
    etag, mtime = h["ETag"], h["LastModified"].timestamp()
    later, earlier = formatdate(mtime + 3600, usegmt=True), formatdate(mtime - 3600,
                                                                        usegmt=True)
    data = gateway.bucket.objects[key]
    ok = [dict(IfMatch=etag), dict(IfMatch=etag.strip('"')), dict(IfMatch="*"),
          dict(IfNoneMatch='"0123"'), dict(IfModifiedSince=earlier),
          dict(IfUnmodifiedSince=later), dict(IfMatch=etag, IfUnmodifiedSince=earlier)]
    for kw in ok:
        assert s3.get_object(Bucket=BUCKET, Key=key, **kw)["Body"].read() == data, kw
    for kw in [dict(IfMatch='"0123"'), dict(IfUnmodifiedSince=earlier)]:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=BUCKET, Key=key, **kw)
        assert _code(e) == (412, "PreconditionFailed"), kw
    for kw in [dict(IfNoneMatch=etag), dict(IfNoneMatch="*"), dict(IfModifiedSince=later),
               dict(IfNoneMatch=etag, IfModifiedSince=earlier)]:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=BUCKET, Key=key, **kw)
        assert _code(e)[0] == 304, kw
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=BUCKET, Key=key, **kw)
        assert _code(e)[0] == 304, kw
    # If-Match also holds for a ranged read (what download_file sends for every part)
    r = s3.get_object(Bucket=BUCKET, Key=key, IfMatch=etag, Range="bytes=6-9")
    assert r["Body"].read() == data[6:10]


def test_response_overrides(s3):
    r = s3.get_object(Bucket=BUCKET, Key="raw.img", Range="bytes=0-3",
                      ResponseContentType="application/x-raw-disk-image",
                      ResponseContentDisposition='attachment; filename="disk.raw"',
                      ResponseCacheControl="no-store", ResponseContentLanguage="en",
                      ResponseContentEncoding="identity",
                      ResponseExpires=time.time() + 60)
    assert r["ContentType"] == "application/x-raw-disk-image"
    assert r["ContentDisposition"] == 'attachment; filename="disk.raw"'
    assert r["CacheControl"] == "no-store" and r["ContentLanguage"] == "en"
    assert r["ContentEncoding"] == "identity"
    assert r["ResponseMetadata"]["HTTPHeaders"]["expires"]


def test_download_file_multipart_with_if_match(s3, gateway, tmp_path):
    """boto3 >= 1.36 sends If-Match with the first part's ETag on every ranged part."""
    from boto3.s3.transfer import TransferConfig

    key = "vm.hxz/disk"
    data = gateway.bucket.objects[key]
    assert len(data) > 8 << 20
    seen: list[dict] = []
    s3.meta.events.register("before-send.s3.GetObject",
                            lambda request, **kw: seen.append(dict(request.headers)))
    target = tmp_path / "disk.out"
    s3.download_file(BUCKET, key, str(target),
                     Config=TransferConfig(multipart_threshold=1 << 20,
                                           multipart_chunksize=2 << 20, max_concurrency=4))
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    ranged = [h for h in seen if "Range" in h]
    assert len(ranged) >= 4
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
    assert all(h.get("If-Match") in (etag, etag.encode()) for h in ranged), ranged[:2]


def test_wrong_key_and_wrong_secret(gateway):
    good = gateway.keys
    bad_secret = client(gateway.url, type(good)(good.access, good.secret + "x"))
    with pytest.raises(ClientError) as e:
        bad_secret.head_object(Bucket=BUCKET, Key="raw.img")
    assert _code(e)[0] == 403
    with pytest.raises(ClientError) as e:
        bad_secret.list_objects_v2(Bucket=BUCKET)
    assert _code(e) == (403, "SignatureDoesNotMatch")
    unknown = client(gateway.url, type(good)("AKIDNOBODY", good.secret))
    with pytest.raises(ClientError) as e:
        unknown.get_object(Bucket=BUCKET, Key="raw.img")
    assert _code(e) == (403, "InvalidAccessKeyId")
    # the second key of the credentials file works as well
    other = client(gateway.url, gateway.other)
    assert other.get_object(Bucket=BUCKET, Key="docs.hxz/files/notes.txt")["Body"].read() \
        == gateway.bucket.objects["docs.hxz/files/notes.txt"]


def test_writes_are_refused_and_nothing_changes(s3, gateway):
    root = gateway.bucket.root

    def tree() -> dict[str, tuple[int, int, bytes]]:
        out = {}
        for p in sorted(root.rglob("*")):
            st = p.lstat()
            out[str(p)] = (st.st_size, st.st_mtime_ns,
                           hashlib.sha256(p.read_bytes()).digest() if p.is_file() and
                           not p.is_symlink() else b"")
        return out

    before = tree()
    calls = [
        lambda: s3.put_object(Bucket=BUCKET, Key="raw.img", Body=b"overwrite"),
        lambda: s3.put_object(Bucket=BUCKET, Key="new.img", Body=b"x" * 100_000),
        lambda: s3.delete_object(Bucket=BUCKET, Key="raw.img"),
        lambda: s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "raw.img"}]}),
        lambda: s3.create_multipart_upload(Bucket=BUCKET, Key="big.img"),
        lambda: s3.upload_part(Bucket=BUCKET, Key="big.img", UploadId="1", PartNumber=1,
                               Body=b"x"),
        lambda: s3.copy_object(Bucket=BUCKET, Key="copy.img",
                               CopySource={"Bucket": BUCKET, "Key": "raw.img"}),
        lambda: s3.create_bucket(Bucket="another"),
        lambda: s3.delete_bucket(Bucket=BUCKET),
        lambda: s3.put_object_acl(Bucket=BUCKET, Key="raw.img", ACL="public-read"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        status, code = _code(e)
        assert (status, code) in ((403, "AccessDenied"), (501, "NotImplemented")), code
    assert tree() == before
