"""Following a mirror's redirects, request by request, as curl does by default.

A download host often answers with a redirect to where the bytes are: a CDN node, or a
storage service's signed URL that expires after minutes.  A ranged GET answered 301, 302,
303, 307 or 308 is sent again, with the same Range and validators, to the ``Location``,
up to ``MAX_HOPS`` times, and the reply at the end is checked like any other (http.py).
Nothing is remembered between requests: every request starts at the mirror's own URL, so
a signed target that has expired is never asked for again.

Rules (curl's defaults, except that a downgrade is refused outright):

* user=/password= (HTTP Basic) go only to the mirror's own origin (scheme, host and port),
  never to another host a redirect names;
* https never redirects to plain http;
* a ``Location`` that is not http(s), or that carries credentials, is refused.

Connections to the hosts redirected to are kept alive in one small pool per origin.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urljoin

from multihttp import request
from multihttp.errors import ServerFault
from multihttp.params import ParamError, Params, ServerURL, parse_url
from multihttp.pool import Pool, make_ssl_context
from multihttp.server import Endpoint
from multihttp.wire import Connection, ConnectionClosed, Response

from .settings import safe_url

MAX_HOPS = 5
# Target hosts whose idle connections are kept (per HttpSource).
MAX_TARGETS = 16
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The body of a redirect is a few lines of HTML; more is not a redirect worth following.
_MAX_REDIRECT_BODY = 65536
# A keep-alive connection the target closed while idle: one immediate retry on a new one.
_STALE = (ConnectionClosed, BrokenPipeError, ConnectionResetError)


class RedirectRefused(ServerFault):
    """A redirect this module does not follow (a loop, no Location, another scheme,
    credentials, a downgrade to http): asking again gets the same answer."""


def _origin(u: ServerURL) -> tuple[str, str, int]:
    return u.scheme, u.host.lower(), u.port


class Redirects:
    """The redirect-following of one HttpSource's mirrors (thread-safe)."""

    def __init__(self, p: Params, log: Callable[[str], None]) -> None:
        self._p = p
        self._log = log
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._ctx = None
        self._seen: set[tuple[str, str]] = set()

    def close_all(self) -> None:
        """Close every kept connection (at close, and after a fork)."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close_all()

    @contextlib.contextmanager
    def follow(self, conn: Connection, mirror: ServerURL, ep: Endpoint, resp: Response,
               offset: int, n: int, extra: dict[str, str] | None = None
               ) -> Iterator[tuple[Connection, Response, str]]:
        """``resp`` answers a GET of bytes [offset, offset+n) sent on ``conn`` to the
        mirror ``mirror`` (its endpoint ``ep``).  Yields the connection, reply and label
        (URL for messages) of the reply that is not a redirect: ``resp`` itself when it is
        none, else the last hop's.  A hop's connection goes back to its pool when the body
        has been read (the block ends normally), and is closed otherwise."""
        if resp.status not in REDIRECTS:
            yield conn, resp, ep.label
            return
        here, label = mirror, ep.label
        hop: tuple[Pool, Connection] | None = None
        for count in range(MAX_HOPS + 1):
            location = resp.headers.get("location", "").strip()
            status = resp.status
            try:
                (hop[1] if hop else conn).read_small(resp, _MAX_REDIRECT_BODY)
            except BaseException:
                if hop:
                    hop[0].discard(hop[1])
                raise
            if hop:
                self._release(*hop, resp)
            if count == MAX_HOPS:
                raise RedirectRefused(f"{ep.label}: more than {MAX_HOPS} redirects")
            if not location:
                raise RedirectRefused(f"{label}: HTTP {status} without a Location")
            here = self._target(here, location, label)
            target = Endpoint(here.path, ep.auth if _origin(here) == _origin(mirror) else None,
                              safe_url(here.url))
            self._note(ep.label, target.label)
            # The hops share the deadline of the request they continue.
            left = conn.remaining()
            if left <= 0:
                raise TimeoutError("request timed out")
            hop, resp = self._send(here, target, left, offset, n, extra)
            label = target.label
            if resp.status not in REDIRECTS:
                break
        pool, hop_conn = hop
        try:
            yield hop_conn, resp, label
        except BaseException:
            pool.discard(hop_conn)
            raise
        self._release(pool, hop_conn, resp)

    # ------------------------------------------------------------------ helpers
    def _target(self, here: ServerURL, location: str, label: str) -> ServerURL:
        try:
            there = parse_url(urljoin(here.url, location))
        except (ParamError, ValueError) as e:
            raise RedirectRefused(f"{label}: redirect to an unusable URL "
                                  f"({str(e).replace('urls: ', '', 1)})") from None
        if here.scheme == "https" and there.scheme != "https":
            raise RedirectRefused(f"{label}: redirect from https to {safe_url(there.url)} "
                                  "refused (plain http)")
        return there

    def _pool(self, u: ServerURL) -> Pool:
        dropped = None
        with self._lock:
            pool = self._pools.get(_origin(u))
            if pool is None:
                if u.scheme == "https" and self._ctx is None:
                    self._ctx = make_ssl_context(self._p)
                if len(self._pools) >= MAX_TARGETS:
                    # A host that sends each request elsewhere: keep the newest targets.
                    dropped = self._pools.pop(next(iter(self._pools)))
                pool = self._pools[_origin(u)] = Pool(u, self._p, self._ctx)
        if dropped is not None:
            dropped.close_all()
        return pool

    def _send(self, u: ServerURL, ep: Endpoint, budget: float, offset: int, n: int,
              extra: dict[str, str] | None) -> tuple[tuple[Pool, Connection], Response]:
        pool = self._pool(u)
        conn = pool.get_idle()
        if conn is not None:
            conn.budget = budget
            try:
                return (pool, conn), request.send_range_get(conn, ep, offset, n, extra)
            except _STALE:
                pool.discard(conn)
        conn = pool.new_connection(budget)
        try:
            return (pool, conn), request.send_range_get(conn, ep, offset, n, extra)
        except BaseException:
            pool.discard(conn)
            raise

    @staticmethod
    def _release(pool: Pool, conn: Connection, resp: Response) -> None:
        if resp.will_close:
            pool.discard(conn)
        else:
            pool.put(conn)

    def _note(self, source: str, target: str) -> None:
        """Log each redirect once (a signed target is logged without its query)."""
        with self._lock:
            if (source, target) in self._seen or len(self._seen) > 64:
                return
            self._seen.add((source, target))
        self._log(f"{source}: redirected to {target}")
