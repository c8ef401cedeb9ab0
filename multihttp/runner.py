"""Running one request over a list of servers: retries, backoff, failover.

Order for one request: the current server, up to ``1 + retries`` attempts with a short
doubling backoff, then each following server in turn (wrapping around) with the same
budget.  The first success makes that server current for later requests.  Only when
every server failed does the request fail (``AllServersFailed``, EIO).

The runner knows nothing of what a request does: an attempt is ``op(conn, server, *args)``
on a pooled connection, and its result is handed back.  What "this server still serves
the same bytes" means is the owner's: ``verify(server, conn)`` runs on a fresh connection
before a server is trusted, at first use and again after each failure.  The multihttp
client (HEAD and OPTIONS) and hxz's HttpSource (a ranged GET of the archive header,
checked against the pinned validators) both run their requests through one Runner.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from typing import Any

from multihttp.errors import FinalError, ServerFault
from multihttp.params import Params, backoff_delays
from multihttp.server import Server
from multihttp.wire import Connection, ConnectionClosed

#: One attempt of a request on one server: ``op(conn, server, *args)``; what it returns
#: is the runner's result.
Attempt = Callable[..., Any]
#: Check a server not verified since its last failure, on a fresh connection; returns
#: whether that connection is still open for the request.  Raises to refuse the server.
Verify = Callable[[Server, Connection], bool]

_RETRYABLE = (ServerFault, OSError)
# The server's end of the connection is gone: nothing can apply a request sent on it later.
_PEER_GONE = (ConnectionClosed, ConnectionResetError, BrokenPipeError, ConnectionRefusedError)
# Typically a keep-alive connection the server closed while it sat idle in the pool.
_STALE = (ConnectionClosed, BrokenPipeError, ConnectionResetError)


class AllServersFailed(ServerFault):
    """Every server failed the request; ``failures`` has one line per server."""

    errno = errno.EIO

    def __init__(self, message: str, failures: list[str] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


def describe_request(what: Any) -> str:
    """``what`` names a request: a string, or (op, count, offset), formatted only when
    something is logged (building the string per request would cost on the hot path)."""
    if isinstance(what, tuple):
        op, count, offset = what
        return f"{op} {count}@{offset}"
    return str(what)


class Runner:
    """The servers of one client, the current one, and the retry/failover loop."""

    def __init__(self, p: Params, verify: Verify, log: Callable[[str], None]) -> None:
        self.p = p
        self.log = log
        self.servers: list[Server] = []
        self.current = 0          # index of the server tried first
        self._verify = verify
        self._lock = threading.Lock()
        self._delays = backoff_delays(p)

    def run(self, what: Any, op: Attempt, *args: Any) -> tuple[Server, Any]:
        """Run ``op(conn, server, *args)`` with retries and failover; returns the server
        that answered and what ``op`` returned.  A FinalError goes straight through."""
        n = len(self.servers)
        start = self.current
        failures = []
        for k in range(n):
            s = self.servers[(start + k) % n]
            if s.excluded:
                failures.append(s.excluded)
                continue
            err, result = self.on_server(s, what, op, args)
            if err is None:
                if k:
                    with self._lock:
                        if self.current != s.index:
                            self.current = s.index
                            self.log(f"failed over to {s.label}")
                return s, result
            failures.append(s.failure(err))
        raise AllServersFailed(f"{describe_request(what)}: every server failed: "
                               + " | ".join(failures), failures)

    def on_server(self, s: Server, what: Any, op: Attempt, args: tuple
                  ) -> tuple[Exception | None, Any]:
        """Try ``op`` on one server with its retry budget: (None, result) on success,
        (the last failure, None) otherwise."""
        last: Exception | None = None
        free_retry = True
        attempt = 0
        while attempt <= self.p.retries:
            if s.excluded:
                return ServerFault(s.excluded), None
            try:
                return None, self._attempt(s, op, args)
            except FinalError:
                raise
            except _RETRYABLE as e:
                last = e
                s.verified = False
                # Idle keep-alive connections to a failing server are suspect.
                s.pool.close_all()
                if free_retry and isinstance(e, _STALE):
                    # One immediate retry on a fresh connection is free.
                    free_retry = False
                    continue
                self.log(f"{describe_request(what)}: attempt {attempt + 1} failed: "
                         f"{s.failure(e)}")
                if isinstance(e, TimeoutError):
                    # A silent server (host down, no RST): each retry would cost
                    # a full timeout; move on to the next server at once.
                    return e, None
                if attempt < self.p.retries:
                    time.sleep(self._delays[attempt])
                attempt += 1
        return last, None

    def _attempt(self, s: Server, op: Attempt, args: tuple) -> Any:
        with s.pool.slots:
            conn = self._checkout(s)
            try:
                result = op(conn, s, *args)
            except BaseException as e:
                s.pool.discard(conn)
                self._outwait(conn, s, e)
                raise
            if conn.will_close:        # the server said it closes: never pool it again
                s.pool.discard(conn)
            else:
                s.pool.put(conn)
            return result

    def _checkout(self, s: Server) -> Connection:
        conn = s.pool.get_idle()
        if conn is not None:
            return conn
        conn = s.pool.new_connection()
        if not s.verified:
            # A server seen for the first time, or again after a failure:
            # check it still serves the same bytes before trusting them.
            try:
                conn.budget = self.p.connect_timeout
                still_open = self._verify(s, conn)
                conn.budget = self.p.timeout
            except BaseException:
                s.pool.discard(conn)
                raise
            s.verified = True
            if not still_open:
                s.pool.discard(conn)
                conn = s.pool.new_connection()
        return conn

    def _outwait(self, conn: Connection, s: Server, e: BaseException) -> None:
        """After a write that got no answer, wait until its Write-Deadline plus the
        allowed clock skew has passed: from then on no replica that honours the
        header can still apply it, so sending it elsewhere cannot be overtaken.

        A server that reset or closed the connection without answering is not waited
        for: its end of the connection is gone with the request in it (a killed or
        restarting server), and http-disk-server applies nothing of a request whose
        reply it can no longer send.  A timeout, or a reply that breaks the protocol,
        leaves the request possibly alive there, and is waited out.  Reads carry no
        deadline and are never waited for."""
        deadline = conn.write_deadline
        if deadline is None or isinstance(e, _PEER_GONE):
            return
        wait = deadline + self.p.clock_skew - time.time()
        if wait > 0:
            self.log(f"{s.label}: write got no answer; waiting {wait:.1f} s for its "
                     f"deadline to pass before resending")
            time.sleep(wait)
