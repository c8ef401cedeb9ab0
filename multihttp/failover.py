"""The client: runs each request on the current server, retries, fails over.

Order for one request: the current server, up to ``1 + retries`` attempts with
a short doubling backoff, then each following server in turn (wrapping around)
with the same budget.  The first success makes that server current for later
requests.  Only when every server failed does the request fail (EIO), after at
most ``params.worst_case_seconds()``.
"""

from __future__ import annotations

import base64
import errno
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from multihttp import request
from multihttp.errors import FinalError, ServerFault
from multihttp.params import Params, backoff_delays
from multihttp.pool import Pool, make_ssl_context
from multihttp.probe import check_server, probe_all
from multihttp.server import Endpoint, Server
from multihttp.wire import Connection, ConnectionClosed

#: One attempt of a request on one server: ``op(conn, server, *args)`` returns True when
#: it left written data on that server not yet durable (a later flush must go there).
Attempt = Callable[..., bool]

_ZEROS = bytes(1 << 20)
_RETRYABLE = (ServerFault, OSError)
# The server's end of the connection is gone: nothing can apply a request sent on it later.
_PEER_GONE = (ConnectionClosed, ConnectionResetError, BrokenPipeError, ConnectionRefusedError)


def stderr_log(msg: str) -> None:
    print(f"multihttp: {msg}", file=sys.stderr, flush=True)


class AllServersFailed(ServerFault):
    errno = errno.EIO


class Client:
    def __init__(self, p: Params, log: Callable[[str], None] = stderr_log) -> None:
        self.p = p
        self.log = log
        self.auth: str | None = None
        if p.user is not None:
            token = base64.b64encode(f"{p.user}:{p.password or ''}".encode()).decode()
            self.auth = f"Basic {token}"
            if any(u.scheme == "http" for u in p.urls):
                log("warning: HTTP Basic auth over plain http:// sends the password "
                    "in clear text; prefer https://")
        self.servers: list[Server] = []
        self.size: int | None = None
        self.features: frozenset[str] = frozenset()
        self.buffered = False       # send ?flush=n (then flush must PATCH)
        self._current = 0
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._dirty: set[int] = set()
        self._delays = backoff_delays(p)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Build the pools (called in nbdkit's after_fork: no sockets cross a fork)."""
        ctx = make_ssl_context(self.p) if any(u.scheme == "https" for u in self.p.urls) else None
        self.servers = [Server(i, Pool(u, self.p, ctx), Endpoint(u.path, self.auth, u.label))
                        for i, u in enumerate(self.p.urls)]

    def close(self) -> None:
        for s in self.servers:
            s.pool.close_all()

    def ensure_probed(self) -> None:
        """Probe once, at the first open; raises ProbeError/FinalError if unusable."""
        with self._probe_lock:
            if self.size is not None:
                return
            if not self.servers:
                self.start()
            size, chosen = probe_all(self.servers, self.p.device_size, self.log)
            if chosen is not None:
                self.features = chosen.features
                self._current = chosen.index
                self.log(f"using {chosen.label}: size {size}, features "
                         f"{','.join(sorted(chosen.features)) or 'none'}")
            else:
                self.log(f"no server answers; exporting device-size {size} and "
                         "retrying servers on each request")
            # Writes acknowledged before a server dies must survive the failover.
            # With one server, ?flush=n plus PATCH flush is safe: if it dies, the
            # flush fails and says so.  With several, a later flush on another
            # server cannot cover bytes left in the dead one's cache, so every
            # write is made durable before it is acknowledged, and flush is a
            # no-op.
            self.buffered = "flush" in self.features and len(self.servers) == 1
            self.size = size

    # -- the failover loop ----------------------------------------------

    def _checkout(self, s: Server) -> Connection:
        conn = s.pool.get_idle()
        if conn is not None:
            return conn
        conn = s.pool.new_connection()
        if not s.verified:
            # A server seen for the first time, or again after a failure:
            # check it still serves the same disk before trusting its bytes.
            try:
                conn.budget = self.p.connect_timeout
                still_open = check_server(s, conn, self.size, self.p.device_size)
                conn.budget = self.p.timeout
            except BaseException:
                s.pool.discard(conn)
                raise
            if not still_open:
                s.pool.discard(conn)
                conn = s.pool.new_connection()
        return conn

    def _attempt(self, s: Server, op: Attempt, args: tuple) -> bool:
        with s.pool.slots:
            conn = self._checkout(s)
            try:
                dirty = op(conn, s, *args)
            except BaseException as e:
                s.pool.discard(conn)
                self._outwait(conn, s, e)
                raise
            if conn.will_close:
                s.pool.discard(conn)
            else:
                s.pool.put(conn)
            return dirty

    def _outwait(self, conn: Connection, s: Server, e: BaseException) -> None:
        """After a write that got no answer, wait until its Write-Deadline plus the
        allowed clock skew has passed: from then on no replica that honours the
        header can still apply it, so sending it elsewhere cannot be overtaken.

        A server that reset or closed the connection without answering is not waited
        for: its end of the connection is gone with the request in it (a killed or
        restarting server), and http-disk-server applies nothing of a request whose
        reply it can no longer send.  A timeout, or a reply that breaks the protocol,
        leaves the request possibly alive there, and is waited out."""
        deadline = conn.write_deadline
        if deadline is None or isinstance(e, _PEER_GONE):
            return
        wait = deadline + self.p.clock_skew - time.time()
        if wait > 0:
            self.log(f"{s.label}: write got no answer; waiting {wait:.1f} s for its "
                     f"deadline to pass before resending")
            time.sleep(wait)

    def _on_server(self, s: Server, what: Any, op: Attempt, args: tuple
                   ) -> tuple[Exception | None, bool]:
        """Try ``op`` on one server with its retry budget: (None, dirtied) on success,
        (the last failure, False) otherwise."""
        last: Exception | None = None
        free_retry = True
        attempt = 0
        while attempt <= self.p.retries:
            if s.excluded:
                return ServerFault(s.excluded), False
            try:
                return None, self._attempt(s, op, args)
            except FinalError:
                raise
            except _RETRYABLE as e:
                last = e
                s.verified = False
                # Idle keep-alive connections to a failing server are suspect.
                s.pool.close_all()
                if free_retry and isinstance(e, (ConnectionClosed, BrokenPipeError,
                                                 ConnectionResetError)):
                    # Typically a keep-alive connection the server closed while
                    # idle: one immediate retry on a fresh connection is free.
                    free_retry = False
                    continue
                self.log(f"{_what(what)}: attempt {attempt + 1} failed: {s.failure(e)}")
                if isinstance(e, TimeoutError):
                    # A silent server (host down, no RST): each retry would cost
                    # a full timeout; move on to the next server at once.
                    return e, False
                if attempt < self.p.retries:
                    time.sleep(self._delays[attempt])
                attempt += 1
        return last, False

    def run(self, what: Any, op: Attempt, *args: Any) -> Server:
        """Run ``op(conn, server, *args)`` with retries and failover; returns the server
        that answered, after recording it as dirty when the op says so.

        ``what`` names the request for messages: a string or (op, count, offset),
        formatted only when something is logged (this is the hot path).
        """
        if self.size is None:
            self.ensure_probed()
        n = len(self.servers)
        start = self._current
        failures = []
        for k in range(n):
            s = self.servers[(start + k) % n]
            if s.excluded:
                failures.append(s.excluded)
                continue
            err, dirty = self._on_server(s, what, op, args)
            if err is None:
                if dirty or k:
                    with self._lock:
                        if dirty:
                            self._dirty.add(s.index)
                        if k and self._current != s.index:
                            self._current = s.index
                            self.log(f"failed over to {s.label}")
                return s
            failures.append(s.failure(err))
        raise AllServersFailed(f"{_what(what)}: every server failed: " + " | ".join(failures))

    # -- NBD operations --------------------------------------------------

    def _write_query(self, s: Server, fua: bool) -> tuple[str, bool]:
        """The query of a write to ``s``, and whether it leaves the data unflushed."""
        if fua:
            q, buffered = "flush=y", False
        elif self.buffered and "flush" in s.features:
            q, buffered = "flush=n", True
        else:
            return "", False      # the server's default: durable before the reply
        return ("&" if "?" in s.endpoint.target else "?") + q, buffered

    def pread(self, buf: Any, offset: int) -> None:
        mv = memoryview(buf).cast("B")
        if len(mv):
            self.run(("read", len(mv), offset), self._get, mv, offset)

    def pwrite(self, buf: Any, offset: int, fua: bool) -> None:
        mv = memoryview(buf).cast("B")
        if len(mv):
            self.run(("write", len(mv), offset), self._put, mv, offset, fua)

    def zero(self, count: int, offset: int, fua: bool, trim: bool = False) -> None:
        if count:
            self.run(("trim" if trim else "zero", count, offset), self._zero, count, offset,
                     fua, trim)

    def flush(self) -> None:
        """Make every write completed so far durable.

        Writes sent with ?flush=n sit in a server's cache until flushed.  The
        flush goes to each server holding such writes; if one of them cannot
        be reached, those writes may be lost, so the flush fails with EIO
        (reported once, like fsync) rather than pretend.
        """
        with self._lock:
            dirty, self._dirty = sorted(self._dirty), set()
        lost = []
        for i in dirty:
            s = self.servers[i]
            err, _ = self._on_server(s, "flush", self._flush, ())
            if err is not None:
                lost.append(s.failure(err))
        if lost:
            raise AllServersFailed("flush: writes not yet durable may be lost: "
                                   + " | ".join(lost))

    # -- attempts: one request on one connection to one server -------------

    def _get(self, conn: Connection, s: Server, mv: memoryview, offset: int) -> bool:
        request.get_range(conn, s.endpoint, mv, offset, s.size)
        return False

    def _put(self, conn: Connection, s: Server, mv: memoryview, offset: int,
             fua: bool) -> bool:
        query, buffered = self._write_query(s, fua)
        request.put_range(conn, s.endpoint, mv, offset, query)
        return buffered

    def _zero(self, conn: Connection, s: Server, count: int, offset: int, fua: bool,
              trim: bool) -> bool:
        if "zero" in s.features:
            durable = fua or not (self.buffered and "flush" in s.features)
            request.patch(conn, s.endpoint, {"op": "zero", "offset": offset, "size": count,
                                             "flush": durable})
            return not durable
        if trim:
            return False     # trim is advisory: nothing to do without PATCH zero
        # No PATCH zero on this server (e.g. the old one): write zeros.
        query, buffered = self._write_query(s, fua)
        pos = 0
        while pos < count:
            n = min(len(_ZEROS), count - pos)
            request.put_range(conn, s.endpoint, memoryview(_ZEROS)[:n], offset + pos, query)
            pos += n
        return buffered

    def _flush(self, conn: Connection, s: Server) -> bool:
        request.patch(conn, s.endpoint, {"op": "flush"})
        return False


def _what(what) -> str:
    if isinstance(what, tuple):
        op, count, offset = what
        return f"{op} {count}@{offset}"
    return str(what)
