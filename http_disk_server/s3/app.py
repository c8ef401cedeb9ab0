"""The S3 face's router: path-style addressing, authentication, the read operations.

  GET  /                          ListBuckets (the one bucket)
  HEAD /BUCKET                    HeadBucket
  GET  /BUCKET?list-type=2&...    ListObjectsV2 (ListObjects without list-type)
  GET  /BUCKET?location           GetBucketLocation (clients such as minio ask first)
  HEAD /BUCKET/KEY                HeadObject
  GET  /BUCKET/KEY                GetObject (Range, preconditions, response-* overrides)

Every request is authenticated first (sigv4.py); then PUT, POST and DELETE (uploads,
multipart, deletes, bucket changes) get 403 AccessDenied, other methods and
sub-resources 501 NotImplemented: nothing the gateway does can change DIR.
"""

from __future__ import annotations

import logging
import secrets
from http import HTTPStatus
from urllib.parse import unquote

from ..config import Config
from ..errors import Failure, failure_for
from ..exchange import Request, Response
from ..router import reply_failure
from . import conditions, listing, xml
from .catalog import Catalog, S3Object
from .errors import S3Error, access_denied, code_for, invalid_argument, not_implemented
from .sigv4 import Incoming, Verifier, parse_query

log = logging.getLogger("http_disk_server")

REGION = "us-east-1"
MAX_KEY_BYTES = 1024
WRITE_METHODS = ("PUT", "POST", "DELETE")
#: Query parameters that are part of authentication, not of the operation.
_AUTH_PARAMS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                          "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
                          "X-Amz-Security-Token", "x-id"})
_LIST_PARAMS = frozenset({"list-type", "prefix", "delimiter", "max-keys",
                          "continuation-token", "start-after", "fetch-owner",
                          "encoding-type", "marker"})
#: GetObject query overrides -> the reply header each sets.
OVERRIDES = {"response-content-type": "Content-Type",
             "response-content-language": "Content-Language",
             "response-expires": "Expires",
             "response-cache-control": "Cache-Control",
             "response-content-disposition": "Content-Disposition",
             "response-content-encoding": "Content-Encoding"}
#: Object query parameters served (besides the response-* overrides).
_OBJECT_PARAMS = frozenset({"versionId", "partNumber"})
_INTERNAL = "We encountered an internal error. Please try again."


class S3App:
    def __init__(self, catalog: Catalog, bucket: str, verifier: Verifier, config: Config,
                 created: float) -> None:
        self._catalog = catalog
        self._bucket = bucket
        self._verifier = verifier
        self._config = config
        self._created = created

    def __call__(self, req: Request, resp: Response) -> None:
        ids = _request_ids()
        try:
            self._dispatch(req, resp, ids)
        except Exception as e:  # noqa: BLE001 - every failure gets exactly one reply
            self._fail(req, resp, e, ids)

    def protocol_error(self, resp: Response, target: str, status: int, reason: str) -> None:
        """A request the HTTP layer refused before it reached this face (a request line
        too long or malformed, a framing header given twice): S3's XML error with the code
        of its status, so that an SDK reports a code, not an unreadable reply."""
        ids = _request_ids()
        code = code_for(Failure(status, reason))
        body = xml.error(code, reason, target.partition("?")[0], ids["x-amz-request-id"])
        resp.send(status, body, xml.CONTENT_TYPE, ids)

    # ---- routing -----------------------------------------------------------------------

    def _dispatch(self, req: Request, resp: Response, ids: dict[str, str]) -> None:
        raw_path, _, raw_query = req.target.partition("?")
        if not raw_path.startswith("/"):
            raise S3Error(HTTPStatus.BAD_REQUEST, "InvalidURI", "Couldn't parse the "
                          "specified URI.")
        query = parse_query(raw_query)
        principal = self._verifier.check(Incoming(req.method, raw_path, query, req.headers))
        params = {k: v for k, v in query if k not in _AUTH_PARAMS}
        bucket, _, key = unquote(raw_path)[1:].partition("/")
        if req.method in WRITE_METHODS:
            raise access_denied(f"{req.method} is refused: this bucket is read-only")
        if req.method not in ("GET", "HEAD"):
            raise not_implemented(f"{req.method} is not implemented by this read-only "
                                  "gateway")
        if not bucket:
            self._list_buckets(resp, ids)
            return
        if bucket != self._bucket:
            raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchBucket", "The specified bucket does "
                          "not exist", {"BucketName": bucket})
        if not key:
            self._bucket_op(req, resp, params, ids)
            return
        self._object(req, resp, key, params, principal is not None, ids)

    # ---- service and bucket --------------------------------------------------------------

    def _list_buckets(self, resp: Response, ids: dict[str, str]) -> None:
        doc = xml.root("ListAllMyBucketsResult")
        listing.owner(doc)
        b = xml.element(xml.element(doc, "Buckets"), "Bucket")
        xml.element(b, "Name", self._bucket)
        xml.element(b, "CreationDate", xml.iso8601(self._created))
        resp.send(HTTPStatus.OK, xml.document(doc), xml.CONTENT_TYPE, ids)

    def _bucket_op(self, req: Request, resp: Response, params: dict[str, str],
                   ids: dict[str, str]) -> None:
        headers = dict(ids, **{"x-amz-bucket-region": REGION})
        if req.method == "HEAD":
            resp.send(HTTPStatus.OK, b"", None, headers)
            return
        if "location" in params:
            doc = xml.root("LocationConstraint")
            if REGION != "us-east-1":  # S3 answers an empty element for us-east-1
                doc.text = REGION
            resp.send(HTTPStatus.OK, xml.document(doc), xml.CONTENT_TYPE, headers)
            return
        other = sorted(set(params) - _LIST_PARAMS)
        if other:
            raise not_implemented(f"the bucket sub-resource or parameter {other[0]!r} is "
                                  "not implemented")
        q = listing.parse_query(params)
        page = listing.paginate(self._catalog.listing(), q)
        resp.send(HTTPStatus.OK, listing.render(self._bucket, q, page), xml.CONTENT_TYPE,
                  headers)

    # ---- objects -------------------------------------------------------------------------

    def _object(self, req: Request, resp: Response, key: str, params: dict[str, str],
                signed: bool, ids: dict[str, str]) -> None:
        _check_key(key)
        overrides = {OVERRIDES[k]: v for k, v in params.items() if k in OVERRIDES}
        other = sorted(k for k in params if k not in OVERRIDES and k not in _OBJECT_PARAMS)
        if other:
            raise not_implemented(f"the object sub-resource or parameter {other[0]!r} is "
                                  "not implemented")
        if params.get("versionId", "null") != "null":
            raise invalid_argument("Invalid version id specified", "versionId",
                                   params["versionId"])
        part = params.get("partNumber")
        if part is not None:
            if not part.isdigit() or not 1 <= int(part) <= 10000:
                raise invalid_argument("Part number must be an integer between 1 and 10000, "
                                       "inclusive", "partNumber", part)
            if int(part) != 1:
                # Every object is one part: its ETag says so ("-1").
                raise S3Error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "InvalidPartNumber",
                              "The requested partnumber is not satisfiable",
                              {"PartNumberRequested": part, "ActualPartCount": "1"})
            if req.header("Range") is not None:
                raise S3Error(HTTPStatus.BAD_REQUEST, "InvalidRequest", "Cannot specify both "
                              "Range header and partNumber query parameter")
        if overrides and not signed:
            raise S3Error(HTTPStatus.BAD_REQUEST, "InvalidRequest", "Request specific "
                          "response headers cannot be used for anonymous GET requests.")
        obj = self._catalog.acquire(key)
        if obj is None:
            raise S3Error(HTTPStatus.NOT_FOUND, "NoSuchKey", "The specified key does not "
                          "exist.", {"Key": key})
        try:
            self._get(req, resp, obj, overrides, ids, whole_part=part is not None)
        finally:
            self._catalog.release(obj)

    def _get(self, req: Request, resp: Response, obj: S3Object, overrides: dict[str, str],
             ids: dict[str, str], whole_part: bool = False) -> None:
        headers = dict(ids)
        headers.update({"ETag": obj.etag, "Last-Modified": conditions.http_date(obj.mtime),
                        "Accept-Ranges": "bytes"})
        if conditions.check(req.headers, obj.etag, obj.mtime) == conditions.NOT_MODIFIED:
            resp.send_no_body(HTTPStatus.NOT_MODIFIED, headers, obj.size)
            return
        headers["Content-Type"] = obj.content_type
        headers.update(overrides)
        self._send(req, resp, obj, headers, whole_part)

    def _send(self, req: Request, resp: Response, obj: S3Object,
              headers: dict[str, str], whole_part: bool) -> None:
        backend = obj.backend()
        if whole_part:
            # partNumber=1: the one part, answered as S3 answers a part (206 with its range)
            headers["x-amz-mp-parts-count"] = "1"
            span = (0, obj.size - 1) if obj.size else None
        else:
            span = conditions.byte_range(req.header("Range"), obj.size)
        if span is None:
            resp.send_range(HTTPStatus.OK, headers, backend, 0, obj.size)
            return
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{obj.size}"
        resp.send_range(HTTPStatus.PARTIAL_CONTENT, headers, backend, first, last - first + 1)

    # ---- failures ------------------------------------------------------------------------

    def _fail(self, req: Request, resp: Response, exc: Exception,
              ids: dict[str, str]) -> None:
        if isinstance(exc, S3Error):
            failure: Failure | None = Failure(exc.status, exc.message, exc.headers,
                                              loud=exc.status >= 500)
            code, message, extra = exc.code, exc.message, exc.extra
        else:
            failure = failure_for(exc)
            if failure is None:
                code = message = ""
            else:
                code = code_for(failure)
                # Device and decompression errors are logged with their block and offset
                # (reply_failure); the client gets S3's generic text.
                message = _INTERNAL if code == "InternalError" else failure.reason
            extra = {}
        resource = req.target.partition("?")[0]

        def send(f: Failure) -> None:
            body = xml.error(code, message, resource, ids["x-amz-request-id"], extra)
            resp.send(f.status, body, xml.CONTENT_TYPE, {**ids, **f.headers})

        reply_failure(req, resp, exc, failure, self._config.verbose, send)


def _request_ids() -> dict[str, str]:
    return {"x-amz-request-id": secrets.token_hex(8).upper(),
            "x-amz-id-2": secrets.token_urlsafe(24)}


def _check_key(key: str) -> None:
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error(HTTPStatus.BAD_REQUEST, "KeyTooLongError", "Your key is too long")
    if any(ord(c) < 0x20 or c == "\x7f" for c in key):
        raise invalid_argument("Object keys may not hold control characters", "key",
                               key.encode("unicode_escape").decode("ascii"))
