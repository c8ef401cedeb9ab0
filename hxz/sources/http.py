"""HttpSource: an archive on one or more HTTP(S) mirrors, read with ranged GETs.

Built from the multihttp client's pieces: ``wire.Connection`` (one HTTP/1.1 exchange
with a deadline), ``pool.Pool`` (keep-alive connections per server, ``connections=``
slots), ``params.Params`` (the same parameter names and limits) and the same failover
order: the current mirror, up to 1 + retries attempts with a doubling backoff, then the
next mirrors in turn; a request that fails on one mirror completes on the next.

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

import base64
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from multihttp.errors import FinalError, ServerFault, status_error
from multihttp.params import ParamError, Params, backoff_delays, parse_url
from multihttp.pool import Pool, make_ssl_context
from multihttp.server import describe
from multihttp.wire import Connection, ConnectionClosed
from nbdsuite.httprange import parse_content_range

from ..errors import BlockError, FormatError
from .fetch import RangeFetcher
from .settings import safe_url

__all__ = ["HttpSource", "NotFound", "ObjectChanged"]

# The first request of a mirror asks for this many bytes: the archive header, which a
# mirror with a different ETag must match byte for byte.
PROBE_BYTES = 4096
_S3_CODE = re.compile(rb"<Code>([A-Za-z]{1,64})</Code>")
_RETRYABLE = (ServerFault, OSError)


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
class _Mirror:
    index: int
    pool: Pool
    label: str                 # URL without userinfo or query: safe to log
    target: str                # request target, query included
    probe: _Probe | None = None
    verified: bool = False     # probed since the last failure
    excluded: str | None = None

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
        ctx = make_ssl_context(p) if any(u.scheme == "https" for u in parsed) else None
        self._mirrors = [_Mirror(i, Pool(u, p, ctx), safe_url(u.url), u.path)
                         for i, u in enumerate(parsed)]
        self.auth: str | None = None
        if p.user is not None:
            token = base64.b64encode(f"{p.user}:{p.password or ''}".encode()).decode()
            self.auth = f"Basic {token}"
            if any(u.scheme == "http" for u in parsed):
                log("warning: HTTP Basic auth over plain http:// sends the password in "
                    "clear text; prefer https://")
        self._delays = backoff_delays(p)
        self._pid = os.getpid()
        self._current = 0
        self._lock = threading.Lock()
        self._ref: _Mirror | None = None
        self._warned: set[str] = set()
        self.size = self._open()
        self._header = self._ref.probe.header
        # Sockets must not cross nbdkit's fork: connections are made again on first use.
        for m in self._mirrors:
            m.pool.close_all()
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
        for m in self._mirrors:
            m.pool.close_all()

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
                conn = m.pool.new_connection(budget=self.params.connect_timeout)
                try:
                    m.probe = self._probe(conn, m)
                finally:
                    m.pool.discard(conn)
            except FinalError as e:
                raise FormatError(str(e) if str(e).startswith(m.label) else
                                  f"{self.name}: {e}") from None
            except (ServerFault, OSError) as e:
                msg = str(e) if isinstance(e, ServerFault) else f"{m.label}: {describe(e)}"
                if " HTTP 404" in msg or " HTTP 410" in msg:
                    missing += 1
                reasons.append(msg)
                continue
            m.verified = True
            self._ref = m
            self._current = m.index
            if not m.pin_headers():
                self.log(f"{m.label}: no ETag or Last-Modified; a file replaced on the "
                         "server cannot be detected")
            if m.probe.size == 0:
                raise FormatError(f"{self.name}: empty object (0 bytes), not a Hexz archive")
            return m.probe.size
        err = NotFound if missing == len(self._mirrors) else FormatError
        raise err(f"{self.name}: no usable mirror: " + " | ".join(reasons))

    def _probe(self, conn: Connection, m: _Mirror) -> _Probe:
        """GET the first bytes: size, validators and header of this mirror's object."""
        hdrs = {"Range": f"bytes=0-{PROBE_BYTES - 1}"}
        if self.auth:
            hdrs["Authorization"] = self.auth
        conn.send("GET", m.target, hdrs)
        resp = conn.response("GET")
        if resp.status == 416:
            cr = resp.headers.get("content-range", "")
            conn.read_small(resp)
            if cr.strip() == "bytes */0":
                return _Probe(0, None, None, b"", resp.will_close)
            raise ServerFault(f"{m.label}: HTTP 416 for the first {PROBE_BYTES} bytes")
        if resp.status == 200:
            raise ServerFault(f"{m.label}: answered 200 to a Range request (no range "
                              "support)")
        if resp.status != 206:
            err = status_error(resp.status, resp.reason, write=False, server=m.label)
            if resp.status == 403:
                # An S3-style refusal says why (SignatureDoesNotMatch, an expired URL...).
                try:
                    code = _S3_CODE.search(conn.read_small(resp, 16384))
                except (ServerFault, OSError):
                    code = None
                if code:
                    err.args = (f"{err} ({code.group(1).decode(errors='replace')})",)
            raise err
        try:
            got = parse_content_range(resp.headers.get("content-range", ""))
        except ValueError as e:
            raise ServerFault(f"{m.label}: {e}") from None
        if got.complete is None or got.first != 0 or \
                got.last != min(PROBE_BYTES, got.complete) - 1:
            raise ServerFault(f"{m.label}: asked bytes 0-{PROBE_BYTES - 1}, got "
                              f"{resp.headers.get('content-range')!r}")
        n = got.last + 1
        if resp.length != n or resp.chunked:
            raise ServerFault(f"{m.label}: Content-Length {resp.headers.get('content-length')!r}"
                              f" for a {n}-byte range")
        body = bytearray(n)
        if conn.readinto_all(memoryview(body)) != n:
            raise ServerFault(f"{m.label}: body ended early")
        return _Probe(got.complete, resp.headers.get("etag"), resp.headers.get("last-modified"),
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
            for m in self._mirrors:
                m.pool.close_all()
        length = len(mv)

        def fn(conn: Connection, m: _Mirror) -> None:
            self._get(conn, m, mv, offset)
        try:
            self._run(offset, length, fn)
        except FinalError as e:     # ObjectChanged included: never another mirror
            raise BlockError(f"{self.name}: bytes {offset}-{offset + length - 1}: {e}") \
                from None

    def _get(self, conn: Connection, m: _Mirror, mv: memoryview, offset: int) -> None:
        """One ranged GET into ``mv``, checked strictly (see the module docstring)."""
        n = len(mv)
        last = offset + n - 1
        hdrs = {"Range": f"bytes={offset}-{last}", **m.pin_headers()}
        if self.auth:
            hdrs["Authorization"] = self.auth
        conn.send("GET", m.target, hdrs)
        resp = conn.response("GET")
        if resp.status == 412:
            raise ObjectChanged(f"{m.label}: the object changed since it was opened (HTTP "
                                f"412 for {', '.join(k for k in hdrs if k.startswith('If-'))})")
        if resp.status != 206:
            if resp.status == 200:
                # Range ignored: the body would start at byte 0. Never data.
                raise ServerFault(f"{m.label}: answered 200 to a Range request")
            raise status_error(resp.status, resp.reason, write=False, server=m.label)
        pin = m.probe
        if pin is not None:
            etag, lm = resp.headers.get("etag"), resp.headers.get("last-modified")
            if (pin.etag and etag != pin.etag) or \
                    (not pin.etag and pin.last_modified and lm != pin.last_modified):
                raise ObjectChanged(f"{m.label}: the object changed since it was opened "
                                    f"(ETag {pin.etag} -> {etag}, Last-Modified "
                                    f"{pin.last_modified!r} -> {lm!r})")
        cr = resp.headers.get("content-range", "")
        try:
            got = parse_content_range(cr)
        except ValueError as e:
            raise ServerFault(f"{m.label}: {e}") from None
        if got.first != offset or got.last != last or got.complete != self.size:
            raise ServerFault(f"{m.label}: asked bytes {offset}-{last}/{self.size}, got {cr!r}")
        if resp.length != n or resp.chunked:
            raise ServerFault(f"{m.label}: Content-Length "
                              f"{resp.headers.get('content-length')!r} for a {n}-byte range")
        got_n = conn.readinto_all(mv)
        if got_n != n:
            raise ServerFault(f"{m.label}: body ended after {got_n} of {n} bytes")

    # ----------------------------------------------------------------- failover
    def _checkout(self, m: _Mirror) -> Connection:
        conn = m.pool.get_idle()
        if conn is not None:
            return conn
        conn = m.pool.new_connection()
        if not m.verified:
            # First use, or first since a failure: check it still has the pinned object.
            try:
                conn.budget = self.params.connect_timeout
                fresh = self._probe(conn, m)
                conn.budget = self.params.timeout
                self._accept(m, fresh)
            except BaseException:
                m.pool.discard(conn)
                raise
            m.verified = True
            if fresh.closes:
                m.pool.discard(conn)
                conn = m.pool.new_connection()
        return conn

    def _attempt(self, m: _Mirror, fn: Callable[[Connection, _Mirror], None]) -> None:
        with m.pool.slots:
            conn = self._checkout(m)
            try:
                fn(conn, m)
            except BaseException:
                m.pool.discard(conn)
                raise
            if conn.will_close:        # the server said it closes: never pool it again
                m.pool.discard(conn)
            else:
                m.pool.put(conn)

    def _on_mirror(self, m: _Mirror, what: str, fn) -> Exception | None:
        last: Exception | None = None
        free_retry = True
        attempt = 0
        while attempt <= self.params.retries:
            if m.excluded:
                return ServerFault(m.excluded)
            try:
                self._attempt(m, fn)
                return None
            except FinalError:
                raise
            except _RETRYABLE as e:
                last = e
                m.verified = False
                m.pool.close_all()
                if free_retry and isinstance(e, (ConnectionClosed, BrokenPipeError,
                                                 ConnectionResetError)):
                    # Typically a keep-alive connection the server closed while idle.
                    free_retry = False
                    continue
                msg = str(e) if isinstance(e, ServerFault) else f"{m.label}: {describe(e)}"
                self.log(f"{what}: attempt {attempt + 1} failed: {msg}")
                if isinstance(e, TimeoutError):
                    return e        # a silent mirror: move on at once
                if attempt < self.params.retries:
                    time.sleep(self._delays[attempt])
                attempt += 1
        return last

    def _run(self, offset: int, length: int, fn) -> None:
        what = f"{self.name}: read {length}@{offset}"
        n = len(self._mirrors)
        start = self._current
        failures = []
        for k in range(n):
            m = self._mirrors[(start + k) % n]
            if m.excluded:
                failures.append(m.excluded)
                continue
            err = self._on_mirror(m, what, fn)
            if err is None:
                if k:
                    with self._lock:
                        if self._current != m.index:
                            self._current = m.index
                            self.log(f"failed over to {m.label}")
                return
            failures.append(str(err) if isinstance(err, ServerFault)
                            else f"{m.label}: {describe(err)}")
        raise BlockError(f"{self.name}: bytes {offset}-{offset + length - 1}: every mirror "
                         "failed: " + " | ".join(failures))
