"""S3Source: an archive in an S3 bucket (s3://BUCKET/KEY), read with ranged GetObject.

Requests are made and signed (SigV4) by botocore; there is no hand-written signer.
Credentials come from access-key=/secret-key= (the names of nbdkit's S3 plugin) or else
from botocore's standard chain: the environment, ~/.aws/credentials and ~/.aws/config,
AWS_PROFILE, instance metadata.  endpoint-url= points at another S3 implementation
(MinIO, Ceph, a test server), with path-style addressing; region= sets the signing region.

The object is pinned at open by its ETag: every GetObject carries If-Match, and the ETag
of every reply is compared with the pinned one, so a key overwritten mid-session fails
the read (EIO) instead of mixing two versions.  Each reply must be a 206 whose
Content-Range is exactly the range asked for, with a body of that length.

The client's parameters keep the multihttp meanings: timeout= (read timeout per request),
connect-timeout=, retries= (botocore's standard retry mode, plus the same number of
retries of a body that breaks off), connections= (connection pool and requests in
flight), cafile= and insecure= (TLS verification of the endpoint).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from multihttp.params import Params, backoff_delays
from nbdsuite.httprange import parse_content_range

from ..errors import BlockError, FormatError
from .fetch import RangeFetcher
from .http import NotFound, stderr_log

__all__ = ["S3Source", "parse_s3_url"]

# Codes S3 answers for credentials it does not accept.
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403",
               "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed"}
_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/KEY`` -> (bucket, key)."""
    p = urlsplit(url)
    key = p.path.lstrip("/")
    if p.scheme != "s3" or not p.netloc or not key:
        raise FormatError(f"{url!r}: expected s3://BUCKET/KEY")
    return p.netloc, key


class S3Source:
    """A PayloadSource over one S3 object."""

    def __init__(self, url: str, params: Params | None = None, *,
                 endpoint_url: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None,
                 session_token: str | None = None,
                 log: Callable[[str], None] = stderr_log) -> None:
        self.params = p = params if params is not None else Params()
        self.bucket, self.key = parse_s3_url(url)
        self.name = f"s3://{self.bucket}/{self.key}"
        self.url = url
        self.log = log
        self._endpoint_url = endpoint_url
        self._region = region
        self._creds = (access_key, secret_key, session_token)
        self._client_lock = threading.Lock()
        self._clients: dict[int, object] = {}
        self._delays = backoff_delays(p)
        self.size, self.etag = self._open()
        self._fetcher = RangeFetcher(self._fetch, self.size, self.name,
                                     workers=p.connections)

    # ------------------------------------------------------------------ client
    def _client(self):
        """The botocore client of this process (a client made before a fork is not
        used after it: its pooled sockets would be shared)."""
        pid = os.getpid()
        c = self._clients.get(pid)
        if c is None:
            with self._client_lock:
                c = self._clients.get(pid)
                if c is None:
                    c = self._clients[pid] = self._make_client()
        return c

    def _make_client(self):
        import botocore.session
        from botocore.config import Config

        p = self.params
        session = botocore.session.get_session()
        ak, sk, token = self._creds
        if ak is not None:
            session.set_credentials(ak, sk, token)
        region = self._region or session.get_config_variable("region") or "us-east-1"
        cfg = Config(connect_timeout=p.connect_timeout, read_timeout=p.timeout,
                     retries={"total_max_attempts": p.retries + 1, "mode": "standard"},
                     max_pool_connections=max(p.connections, 2),
                     s3={"addressing_style": "path" if self._endpoint_url else "auto"},
                     signature_version="s3v4")
        verify: bool | str | None = None
        if p.insecure:
            verify = False
        elif p.cafile:
            verify = p.cafile
        return session.create_client("s3", region_name=region, endpoint_url=self._endpoint_url,
                                     verify=verify, config=cfg)

    # ----------------------------------------------------------------- opening
    def _open(self) -> tuple[int, str]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            head = self._client().head_object(Bucket=self.bucket, Key=self.key)
        except NoCredentialsError:
            raise FormatError(f"{self.name}: no AWS credentials (give access-key= and "
                              "secret-key=, or set them up for the AWS chain: environment, "
                              "~/.aws/credentials, AWS_PROFILE)") from None
        except ClientError as e:
            code, what = _client_error(e)
            if code in _MISSING_CODES:
                raise NotFound(f"{self.name}: no such object ({what})") from None
            if code in _AUTH_CODES:
                raise FormatError(f"{self.name}: S3 refused the credentials ({what}); check "
                                  "access-key=/secret-key= or the AWS chain") from None
            raise FormatError(f"{self.name}: HEAD failed: {what}") from None
        except (BotoCoreError, OSError) as e:
            raise FormatError(f"{self.name}: cannot reach S3: {_describe(e)}") from None
        size = int(head.get("ContentLength", -1))
        etag = head.get("ETag")
        if size <= 0:
            raise FormatError(f"{self.name}: empty object ({size} bytes), not a Hexz archive")
        if not etag:
            raise FormatError(f"{self.name}: S3 gave no ETag; cannot pin the object")
        return size, etag

    # ---------------------------------------------------------------- protocol
    def pread(self, length: int, offset: int) -> bytes:
        return self._fetcher.pread(length, offset)

    def preadv(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return self._fetcher.preadv(ranges)

    def close(self) -> None:
        self._fetcher.close()
        c = self._clients.pop(os.getpid(), None)
        if c is not None:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - older botocore has no close()
                pass

    @property
    def requests(self) -> int:
        return self._fetcher.requests

    def __repr__(self) -> str:
        return f"<S3Source {self.name} size={self.size}>"

    # ----------------------------------------------------------------- reading
    def _fetch(self, offset: int, length: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        last = offset + length - 1
        where = f"{self.name}: bytes {offset}-{last}"
        failures: list[str] = []
        for attempt in range(self.params.retries + 1):
            try:
                return self._get(offset, last, where)
            except ClientError as e:
                code, what = _client_error(e)
                if code in ("412", "PreconditionFailed"):
                    raise BlockError(f"{where}: the object changed since it was opened "
                                     f"({what} for If-Match {self.etag})") from None
                # botocore already retried what is worth retrying.
                raise BlockError(f"{where}: {what}") from None
            except (BotoCoreError, OSError, _Retry) as e:
                failures.append(_describe(e))
                self.log(f"{where}: attempt {attempt + 1} failed: {_describe(e)}")
                if attempt < self.params.retries:
                    time.sleep(self._delays[attempt])
        raise BlockError(f"{where}: every attempt failed: " + " | ".join(failures))

    def _get(self, offset: int, last: int, where: str) -> bytes:
        resp = self._client().get_object(Bucket=self.bucket, Key=self.key,
                                         Range=f"bytes={offset}-{last}", IfMatch=self.etag)
        body = resp["Body"]
        try:
            status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 206:
                raise _Retry(f"HTTP {status} to a Range request")
            if resp.get("ETag") != self.etag:
                raise BlockError(f"{where}: the object changed since it was opened (ETag "
                                 f"{self.etag} -> {resp.get('ETag')})")
            cr = resp.get("ContentRange", "")
            try:
                got = parse_content_range(cr)
            except ValueError as e:
                raise _Retry(str(e)) from None
            if got.first != offset or got.last != last or got.complete != self.size:
                raise _Retry(f"asked bytes {offset}-{last}/{self.size}, got {cr!r}")
            n = last - offset + 1
            data = body.read(n + 1)
            if len(data) != n:
                raise _Retry(f"body of {len(data)} bytes for a {n}-byte range")
            return data
        finally:
            body.close()


class _Retry(Exception):
    """A reply that breaks the protocol: worth another attempt."""


def _client_error(e) -> tuple[str, str]:
    """(error code, 'HTTP status code') of a botocore ClientError; a HEAD has no body,
    so its code is the bare status."""
    code = str(e.response.get("Error", {}).get("Code", ""))
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == str(status):
        code = str(status)
        return code, f"HTTP {status}"
    return code, f"HTTP {status} {code}".strip()


def _describe(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
