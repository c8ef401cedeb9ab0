"""ListObjectsV2 (and the older ListObjects): prefixes, delimiters and paging.

The walk is over the catalog's keys in UTF-8 byte order. With a delimiter, every key
that has one after the prefix rolls up into its common prefix; keys and common prefixes
("entries") both count against max-keys, and entries only grow along the sorted keys, so
"resume after entry E" is all a continuation token has to say. Tokens are opaque to
clients but self-contained (base64 of a small JSON), so they survive a restart and a
mangled one is refused with InvalidArgument.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from . import xml
from .catalog import S3Object
from .errors import invalid_argument

MAX_KEYS = 1000
OWNER_ID = "http-disk-server"


@dataclass(frozen=True)
class ListQuery:
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS
    start_after: str = ""        # V2 start-after, or V1 marker (after_entry then)
    after_entry: str = ""        # from a continuation token or a V1 marker
    token: str | None = None     # as the client sent it, echoed back
    url_encoding: bool = False
    fetch_owner: bool = False
    v2: bool = True


@dataclass
class Page:
    contents: list[S3Object] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last_entry: str = ""


def parse_query(params: dict[str, str]) -> ListQuery:
    """The list parameters of a request (last value of each); raises S3Error."""
    v2 = params.get("list-type") == "2"
    if "list-type" in params and not v2:
        raise invalid_argument("Invalid List Type specified in Request", "list-type",
                               params["list-type"])
    encoding = params.get("encoding-type")
    if encoding is not None and encoding.lower() != "url":
        raise invalid_argument("Invalid Encoding Method specified in Request",
                               "encoding-type", encoding)
    text = params.get("max-keys", str(MAX_KEYS))
    if not text.isdigit() or len(text) > 18:
        raise invalid_argument("Provided max-keys not an integer or within integer range",
                               "max-keys", text)
    token = params.get("continuation-token") if v2 else None
    after_entry = decode_token(token) if token is not None else ""
    if not v2:
        after_entry = params.get("marker", "")
    return ListQuery(prefix=params.get("prefix", ""), delimiter=params.get("delimiter", ""),
                     max_keys=min(int(text), MAX_KEYS),
                     start_after=params.get("start-after", "") if v2 else "",
                     after_entry=after_entry, token=token,
                     url_encoding=encoding is not None,
                     fetch_owner=params.get("fetch-owner", "").lower() == "true", v2=v2)


def encode_token(entry: str) -> str:
    doc = json.dumps({"v": 1, "after": entry}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(doc).decode("ascii")


def decode_token(token: str) -> str:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if isinstance(doc, dict) and doc.get("v") == 1 and isinstance(doc.get("after"), str):
            return doc["after"]
    except (ValueError, UnicodeError, binascii.Error):
        pass
    raise invalid_argument("The continuation token provided is incorrect",
                           "continuation-token", token)


def _bytes(s: str) -> bytes:
    return s.encode("utf-8")


def paginate(objects: Sequence[S3Object], q: ListQuery) -> Page:
    page = Page()
    after_entry, start_after = _bytes(q.after_entry), _bytes(q.start_after)
    count = 0
    for obj in objects:
        key = obj.key
        if not key.startswith(q.prefix):
            continue
        if q.start_after and _bytes(key) <= start_after:
            continue
        entry, is_prefix = key, False
        if q.delimiter:
            cut = key.find(q.delimiter, len(q.prefix))
            if cut >= 0:
                entry, is_prefix = key[:cut + len(q.delimiter)], True
        if (q.after_entry and _bytes(entry) <= after_entry) or \
                (is_prefix and page.prefixes and page.prefixes[-1] == entry):
            continue
        if count >= q.max_keys:
            page.truncated = q.max_keys > 0
            break
        count += 1
        page.last_entry = entry
        if is_prefix:
            page.prefixes.append(entry)
        else:
            page.contents.append(obj)
    return page


def render(bucket: str, q: ListQuery, page: Page) -> bytes:
    enc = (lambda s: quote(s, safe="/")) if q.url_encoding else (lambda s: s)
    doc = xml.root("ListBucketResult")
    xml.element(doc, "Name", bucket)
    xml.element(doc, "Prefix", enc(q.prefix))
    if q.v2:
        if q.token is not None:
            xml.element(doc, "ContinuationToken", q.token)
        if q.start_after:
            xml.element(doc, "StartAfter", enc(q.start_after))
        xml.element(doc, "KeyCount", len(page.contents) + len(page.prefixes))
    else:
        xml.element(doc, "Marker", enc(q.after_entry))
    xml.element(doc, "MaxKeys", q.max_keys)
    if q.delimiter:
        xml.element(doc, "Delimiter", enc(q.delimiter))
    if q.url_encoding:
        xml.element(doc, "EncodingType", "url")
    xml.element(doc, "IsTruncated", "true" if page.truncated else "false")
    if page.truncated:
        if q.v2:
            xml.element(doc, "NextContinuationToken", encode_token(page.last_entry))
        elif q.delimiter:
            xml.element(doc, "NextMarker", enc(page.last_entry))
    for obj in page.contents:
        c = xml.element(doc, "Contents")
        xml.element(c, "Key", enc(obj.key))
        xml.element(c, "LastModified", xml.iso8601(obj.mtime))
        xml.element(c, "ETag", obj.etag)
        xml.element(c, "Size", obj.size)
        xml.element(c, "StorageClass", "STANDARD")
        if q.fetch_owner or not q.v2:
            owner(c)
    for p in page.prefixes:
        xml.element(xml.element(doc, "CommonPrefixes"), "Prefix", enc(p))
    return xml.document(doc)


def owner(parent: object) -> None:
    o = xml.element(parent, "Owner")  # type: ignore[arg-type]
    xml.element(o, "ID", OWNER_ID)
    xml.element(o, "DisplayName", OWNER_ID)
