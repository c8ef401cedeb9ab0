"""HttpSource: an archive on one or more HTTP(S) mirrors, read with ranged GETs.

Built from the multihttp client's pieces: ``wire.Connection`` (one HTTP/1.1 exchange
with a deadline), ``pool.Pool`` (keep-alive connections per server, ``connections=``
slots), ``params.Params`` (the same parameter names and limits), ``request``'s one strict
check of a ranged reply, and ``runner.Runner``, the multihttp client's own failover loop:
the current mirror, up to 1 + retries attempts with a doubling backoff, then the next
mirrors in turn; a request that fails on one mirror completes on the next.  What is
particular to an archive is here: the probe at open, the pinned validators sent as
If-Match / If-Unmodified-Since, and the check a mirror passes before it is trusted.

Strictness, so that wrong bytes are never returned:

* every GET carries a Range; data is only a 206 whose Content-Range is exactly the range
  asked for and whose complete length is the object's size, with a Content-Length of the
  same length and a body of that many bytes.  A 200 (a server or CDN ignoring Range), a
  shifted or malformed Content-Range, a short body, a stall past timeout= are failures of
  that mirror for that request: retried, then failed over, then EIO;
* the object is pinned at open by its ETag (or Last-Modified where the server gives no
  ETag).  Every GET sends If-Match (or If-Unmodified-Since), and the validator of every
  206 is compared with the pinned one: a 412 or a different validator means the file was
  replaced, and fails that read (EIO) on every mirror, never mixing two versions;
* a mirror is used only when its size and its first 4096 bytes (the archive header) are
  those of the first mirror that answered; a different ETag is then logged once, and the
  mirror is pinned by its own ETag.

The size comes from the first ranged GET (``Content-Range: bytes 0-4095/SIZE``), not from
HEAD, so a presigned URL (signed for GET only) works as a plain url=.  Names and messages
carry the URL without userinfo and without its query (a presigned URL's signature).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from multihttp import request
from multihttp.errors import FinalError, ServerFault, status_error
from multihttp.params import ParamError, Params, backoff_delays, parse_url
from multihttp.pool import Pool, make_ssl_context
from multihttp.runner import AllServersFailed, Runner
from multihttp.server import Endpoint, Server, basic_auth
from multihttp.wire import Connection, Response
from nbdsuite.httprange import parse_content_range

from ..errors import BlockError, FormatError
from .fetch import RangeFetcher
from .redirects import RedirectRefused, Redirects
from .settings import safe_url

__all__ = ["HttpSource", "NotFound", "ObjectChanged"]

# The first request of a mirror asks for this many bytes: the archive header, which a
# mirror with a different ETag must match byte for byte.
PROBE_BYTES = 4096
_S3_CODE = re.compile(rb"<Code>([A-Za-z]{1,64})</Code>")


def stderr_log(msg: str) -> None:
    print(f"hxz: {msg}", file=sys.stderr, flush=True)


class ObjectChanged(FinalError):
    """The object is not the one pinned at open: never worth another mirror."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 5)    # EIO


class NotFound(FormatError):
    """No mirror has the object (404, or 403 as S3 answers for a missing key)."""


@dataclass
class _Probe:
    size: int
    etag: str | None
    last_modified: str | None
    header: bytes
    closes: bool


@dataclass
class _Mirror(Server):
    """A multihttp Server (its endpoint's label is the URL without userinfo or query:
    safe to log) and the object it was seen to serve."""

    probe: _Probe | None = None

    def pin_headers(self) -> dict[str, str]:
        p = self.probe
        if p is None:
            return {}
        if p.etag and not p.etag.startswith("W/"):
            return {"If-Match": p.etag}
        if p.last_modified:
            return {"If-Unmodified-Since": p.last_modified}
        return {}


class HttpSource:
    """A PayloadSource over HTTP(S) mirrors of one object, in order of preference."""

    def __init__(self, urls: Sequence[str], params: Params | None = None, *,
                 log: Callable[[str], None] = stderr_log) -> None:
        if isinstance(urls, str):
            urls = [u for u in urls.split(",") if u.strip()]
        if not urls:
            raise FormatError("no URL given")
        self.params = p = params if params is not None else Params()
        self.log = log
        self.name = safe_url(urls[0])
        self.urls = list(urls)
        try:
            parsed = [parse_url(u) for u in urls]
        except ParamError as e:
            raise FormatError(f"{self.name}: {str(e).replace('urls: ', '', 1)}") from None
        self.auth = basic_auth(p, parsed, log)
        ctx = make_ssl_context(p) if any(u.scheme == "https" for u in parsed) else None
        self._mirrors = [_Mirror(i, Pool(u, p, ctx), Endpoint(u.path, self.auth, safe_url(u.url)))
                         for i, u in enumerate(parsed)]
        self._redirects = Redirects(p, log)
        self._runner = Runner(p, self._verify, log)
        self._runner.servers = list(self._mirrors)
        self._what = f"{self.name}: read"
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._ref: _Mirror | None = None
        self._warned: set[str] = set()
        self.size = self._open()
        self._header = self._ref.probe.header
        # Sockets must not cross nbdkit's fork: connections are made again on first use.
        self._close_connections()
        self._fetcher = RangeFetcher(self._fetch, self.size, self.name,
                                     workers=p.connections, fetch_into=self._fetch_into)

    # ---------------------------------------------------------------- protocol
    def pread(self, length: int, offset: int) -> bytes:
        if offset + length <= len(self._header) and offset >= 0:
            # The header came with the probe at open: no second request for it.
            return self._header[offset:offset + length]
        return self._fetcher.pread(length, offset)

    def preadv(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return self._fetcher.preadv(ranges)

    def readinto(self, buf: Any, offset: int) -> int:
        """Optional member the reader uses when present: bytes land in its buffer."""
        return self._fetcher.readinto(buf, offset)

    def close(self) -> None:
        self._fetcher.close()
        self._close_connections()

    def _close_connections(self) -> None:
        for m in self._mirrors:
            m.pool.close_all()
        self._redirects.close_all()

    @property
    def requests(self) -> int:
        return self._fetcher.requests

    def __repr__(self) -> str:
        return f"<HttpSource {self.name} size={self.size} mirrors={len(self._mirrors)}>"

    # ------------------------------------------------------------------ opening
    def _open(self) -> int:
        """Probe the mirrors in order until one answers; it becomes the reference."""
        reasons: list[str] = []
        missing = 0
        for m in self._mirrors:
            try:
                m.probe = self._first_probe(m)
            except FinalError as e:
                raise FormatError(str(e) if str(e).startswith(m.label) else
                                  f"{self.name}: {e}") from None
            except (ServerFault, OSError) as e:
                msg = m.failure(e)
                if " HTTP 404" in msg or " HTTP 410" in msg:
                    missing += 1
                reasons.append(msg)
                continue
            m.verified = True
            self._ref = m
            self._runner.current = m.index
            if not m.pin_headers():
                self.log(f"{m.label}: no ETag or Last-Modified; a file replaced on the "
                         "server cannot be detected")
            if m.probe.size == 0:
                raise FormatError(f"{self.name}: empty object (0 bytes), not a Hexz archive")
            return m.probe.size
        err = NotFound if missing == len(self._mirrors) else FormatError
        raise err(f"{self.name}: no usable mirror: " + " | ".join(reasons))

    def _first_probe(self, m: _Mirror) -> _Probe:
        """The probe at open, with the retry budget of every later request (1 + retries
        attempts, the same doubling backoff): a CDN edge may answer a range of an object
        it has not cached yet with the whole object (200), a server may be restarting.
        A missing object (404, 410), a silent server (timeout), a redirect that is not
        followed and a final refusal (a 403 naming wrong credentials) are not retried."""
        delays = backoff_delays(self.params)
        attempt = 0
        while True:
            try:
                conn = m.pool.new_connection(budget=self.params.connect_timeout)
                try:
                    return self._probe(conn, m)
                finally:
                    m.pool.discard(conn)
            except FinalError:
                raise
            except (ServerFault, OSError) as e:
                msg = m.failure(e)
                if attempt >= self.params.retries or \
                        isinstance(e, TimeoutError | RedirectRefused) or \
                        " HTTP 404" in msg or " HTTP 410" in msg:
                    raise
                self.log(f"{msg} (opening, attempt {attempt + 1}); trying again")
                time.sleep(delays[attempt])
                attempt += 1

    def _probe(self, conn: Connection, m: _Mirror) -> _Probe:
        """GET the first bytes: size, validators and header of this mirror's object (where
        its redirects lead).  ``closes``: whether ``conn`` is closed by the server."""
        resp = request.send_range_get(conn, m.endpoint, 0, PROBE_BYTES)
        closes = resp.will_close
        with self._redirects.follow(conn, m.pool.url, m.endpoint, resp, 0, PROBE_BYTES) \
                as (last, resp, label):
            return replace(self._probe_reply(last, resp, label), closes=closes)

    def _probe_reply(self, conn: Connection, resp: Response, label: str) -> _Probe:
        """The probe's reply (``label``: the URL that sent it, for messages)."""
        if resp.status == 416:
            cr = resp.headers.get("content-range", "")
            conn.read_small(resp)
            if cr.strip() == "bytes */0":
                return _Probe(0, None, None, b"", resp.will_close)
            raise ServerFault(f"{label}: HTTP 416 for the first {PROBE_BYTES} bytes")
        if resp.status == 200:
            raise ServerFault(f"{label}: answered 200 to a Range request (no range "
                              "support)")
        if resp.status == 403:
            # An S3-style refusal says why (SignatureDoesNotMatch, an expired URL...).
            err = status_error(403, resp.reason, write=False, server=label)
            try:
                code = _S3_CODE.search(conn.read_small(resp, 16384))
            except (ServerFault, OSError):
                code = None
            if code:
                err.args = (f"{err} ({code.group(1).decode(errors='replace')})",)
            raise err
        # The size is not known yet: the reply says it, and must then carry exactly the
        # first min(PROBE_BYTES, size) bytes of an object of that size.
        try:
            size = parse_content_range(resp.headers.get("content-range", "")).complete
        except ValueError:
            size = None             # refused below, with the reason
        body = bytearray(PROBE_BYTES if size is None else min(PROBE_BYTES, size))
        request.read_range_reply(conn, resp, label, memoryview(body), 0, size,
                                 size_required=True)
        assert size is not None
        return _Probe(size, resp.headers.get("etag"), resp.headers.get("last-modified"),
                      bytes(body), resp.will_close)

    def _accept(self, m: _Mirror, fresh: _Probe) -> None:
        """Check a (re)probed mirror against its own pin, or against the reference."""
        if m.probe is not None:
            old = m.probe
            if old.size != fresh.size or (old.etag or None) != (fresh.etag or None) or \
                    (old.last_modified or None) != (fresh.last_modified or None):
                raise ObjectChanged(f"{m.label}: the object changed since it was opened "
                                    f"(ETag {old.etag} -> {fresh.etag}, size {old.size} -> "
                                    f"{fresh.size})")
            return
        ref = self._ref.probe
        if fresh.size != ref.size:
            m.excluded = (f"{m.label}: size {fresh.size} differs from {self._ref.label}'s "
                          f"{ref.size}; not using this mirror")
            raise ServerFault(m.excluded)
        # The header is compared even when the validators agree: nginx's ETag is only
        # mtime-size, which two different files copied in the same second share.
        if fresh.header != ref.header:
            m.excluded = (f"{m.label}: a different object than {self._ref.label} (ETag "
                          f"{fresh.etag} against {ref.etag}, header bytes differ); not "
                          "using this mirror")
            raise ServerFault(m.excluded)
        if (fresh.etag or None, fresh.last_modified or None) != \
                (ref.etag or None, ref.last_modified or None):
            self._log_once(f"etag:{m.index}", f"{m.label}: ETag {fresh.etag} differs from "
                           f"{self._ref.label}'s {ref.etag}, but size and header match; "
                           "using it, pinned to its own ETag")
        m.probe = fresh

    def _log_once(self, key: str, msg: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        self.log(msg)

    # ------------------------------------------------------------------ reading
    def _fetch(self, offset: int, length: int) -> bytearray:
        buf = bytearray(length)
        self._fetch_into(offset, memoryview(buf))
        return buf

    def _fetch_into(self, offset: int, mv: memoryview) -> None:
        """Fill ``mv`` with the object's bytes at ``offset``, failing over as needed."""
        if self._pid != os.getpid():
            # Keep-alive connections made before a fork are shared with the parent.
            self._pid = os.getpid()
            self._close_connections()
        try:
            self._runner.run((self._what, len(mv), offset), self._get, mv, offset)
        except FinalError as e:     # ObjectChanged included: never another mirror
            raise BlockError(f"{self.name}: bytes {offset}-{offset + len(mv) - 1}: {e}") \
                from None
        except AllServersFailed as e:
            raise BlockError(f"{self.name}: bytes {offset}-{offset + len(mv) - 1}: every "
                             "mirror failed: " + " | ".join(e.failures)) from None

    def _get(self, conn: Connection, m: _Mirror, mv: memoryview, offset: int) -> None:
        """One ranged GET into ``mv``, checked strictly (see the module docstring)."""
        pins = m.pin_headers()
        resp = request.send_range_get(conn, m.endpoint, offset, len(mv), pins)
        with self._redirects.follow(conn, m.pool.url, m.endpoint, resp, offset, len(mv),
                                    pins) as (conn, resp, label):
            if resp.status == 412:
                raise ObjectChanged(f"{label}: the object changed since it was opened (HTTP "
                                    f"412 for {', '.join(pins)})")
            if resp.status == 206:
                self._check_pin(m, resp)
            request.read_range_reply(conn, resp, label, mv, offset, self.size,
                                     size_required=True)

    def _check_pin(self, m: _Mirror, resp: Response) -> None:
        """A 206 must carry the validator the mirror is pinned to, whatever If-Match did
        (a server or proxy may ignore it)."""
        pin = m.probe
        if pin is None:
            return
        etag, lm = resp.headers.get("etag"), resp.headers.get("last-modified")
        if (pin.etag and etag != pin.etag) or \
                (not pin.etag and pin.last_modified and lm != pin.last_modified):
            raise ObjectChanged(f"{m.label}: the object changed since it was opened "
                                f"(ETag {pin.etag} -> {etag}, Last-Modified "
                                f"{pin.last_modified!r} -> {lm!r})")

    def _verify(self, m: Server, conn: Connection) -> bool:
        """Runner's check of a mirror at first use or after a failure: it still has the
        pinned object (or, new, the reference's). Returns whether ``conn`` stays open."""
        assert isinstance(m, _Mirror)
        fresh = self._probe(conn, m)
        self._accept(m, fresh)
        return not fresh.closes
