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

from multihttp import request
from multihttp.errors import FinalError, ServerFault
from multihttp.params import Params, backoff_delays
from multihttp.pool import Pool, make_ssl_context
from multihttp.probe import Server, check_server, describe, probe_all
from multihttp.wire import Connection, ConnectionClosed

_ZEROS = bytes(1 << 20)
_RETRYABLE = (ServerFault, OSError)


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
        self.servers = [Server(i, Pool(u, self.p, ctx)) for i, u in enumerate(self.p.urls)]

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
            size, chosen = probe_all(self.servers, self.auth, self.p.device_size, self.log)
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
                still_open = check_server(s, conn, self.auth, self.size, self.p.device_size)
                conn.budget = self.p.timeout
            except BaseException:
                s.pool.discard(conn)
                raise
            if not still_open:
                s.pool.discard(conn)
                conn = s.pool.new_connection()
        return conn

    def _attempt(self, s: Server, fn) -> None:
        with s.pool.slots:
            conn = self._checkout(s)
            try:
                fn(conn, s)
            except request.Close:
                s.pool.discard(conn)
                return
            except BaseException:
                s.pool.discard(conn)
                self._outwait(conn, s)
                raise
            s.pool.put(conn)

    def _outwait(self, conn: Connection, s: Server) -> None:
        """After a write that got no answer, wait until its Write-Deadline plus the
        allowed clock skew has passed: from then on no replica that honours the
        header can still apply it, so sending it elsewhere cannot be overtaken."""
        deadline = conn.write_deadline
        if deadline is None:
            return
        wait = deadline + self.p.clock_skew - time.time()
        if wait > 0:
            self.log(f"{s.label}: write got no answer; waiting {wait:.1f} s for its "
                     f"deadline to pass before resending")
            time.sleep(wait)

    def _on_server(self, s: Server, what, fn) -> Exception | None:
        """Try ``fn`` on one server with its retry budget. None on success."""
        last: Exception | None = None
        free_retry = True
        attempt = 0
        while attempt <= self.p.retries:
            if s.excluded:
                return ServerFault(s.excluded)
            try:
                self._attempt(s, fn)
                return None
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
                msg = str(e) if isinstance(e, ServerFault) else f"{s.label}: {describe(e)}"
                self.log(f"{_what(what)}: attempt {attempt + 1} failed: {msg}")
                if isinstance(e, TimeoutError):
                    # A silent server (host down, no RST): each retry would cost
                    # a full timeout; move on to the next server at once.
                    return e
                if attempt < self.p.retries:
                    time.sleep(self._delays[attempt])
                attempt += 1
        return last

    def run(self, what, fn) -> Server:
        """Run ``fn(conn, server)`` with retries and failover. Returns the server used.

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
            err = self._on_server(s, what, fn)
            if err is None:
                if k:
                    with self._lock:
                        if self._current != s.index:
                            self._current = s.index
                            self.log(f"failed over to {s.label}")
                return s
            failures.append(str(err) if isinstance(err, ServerFault)
                            else f"{s.label}: {describe(err)}")
        raise AllServersFailed(f"{_what(what)}: every server failed: " + " | ".join(failures))

    # -- NBD operations --------------------------------------------------

    def _query(self, s: Server, fua: bool) -> str:
        if fua:
            q = "flush=y"
        elif self.buffered and "flush" in s.features:
            q = "flush=n"
        else:
            return ""      # the server's default: durable before the reply
        return ("&" if "?" in s.pool.url.path else "?") + q

    def _mark_dirty(self, s: Server, query: str) -> None:
        if query.endswith("flush=n"):
            with self._lock:
                self._dirty.add(s.index)

    def pread(self, buf, offset: int) -> None:
        mv = memoryview(buf).cast("B")
        if not len(mv):
            return

        def fn(conn, s):
            u = s.pool.url
            request.get_range(conn, u.path, self.auth, u.label, mv, offset, s.size)
        self.run(("read", len(mv), offset), fn)

    def pwrite(self, buf, offset: int, fua: bool) -> None:
        mv = memoryview(buf).cast("B")
        if not len(mv):
            return

        def fn(conn, s):
            u = s.pool.url
            q = self._query(s, fua)
            try:
                request.put_range(conn, u.path, self.auth, u.label, mv, offset, q)
            except request.Close:
                self._mark_dirty(s, q)
                raise
            self._mark_dirty(s, q)
        self.run(("write", len(mv), offset), fn)

    def zero(self, count: int, offset: int, fua: bool, trim: bool = False) -> None:
        if not count:
            return

        def fn(conn, s):
            u = s.pool.url
            if "zero" in s.features:
                durable = fua or not (self.buffered and "flush" in s.features)
                request.patch(conn, u.path, self.auth, u.label,
                              {"op": "zero", "offset": offset, "size": count,
                               "flush": durable})
                if not durable:
                    self._mark_dirty(s, "?flush=n")
                return
            if trim:
                return       # trim is advisory: nothing to do without PATCH zero
            # No PATCH zero on this server (e.g. the old one): write zeros.
            q = self._query(s, fua)
            pos = 0
            while pos < count:
                n = min(len(_ZEROS), count - pos)
                request.put_range(conn, u.path, self.auth, u.label,
                                  memoryview(_ZEROS)[:n], offset + pos, q)
                pos += n
            self._mark_dirty(s, q)
        self.run(("trim" if trim else "zero", count, offset), fn)

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

            def fn(conn, s):
                u = s.pool.url
                request.patch(conn, u.path, self.auth, u.label, {"op": "flush"})
            err = self._on_server(s, "flush", fn)
            if err is not None:
                lost.append(str(err) if isinstance(err, ServerFault)
                            else f"{s.label}: {describe(err)}")
        if lost:
            raise AllServersFailed("flush: writes not yet durable may be lost: "
                                   + " | ".join(lost))


def _what(what) -> str:
    if isinstance(what, tuple):
        op, count, offset = what
        return f"{op} {count}@{offset}"
    return str(what)
