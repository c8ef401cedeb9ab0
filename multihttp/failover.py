"""The client: NBD requests as HTTP requests on a list of replicas.

Each request runs through a ``runner.Runner``: the current server, retries, then the
next servers in turn (the order is described there); only when every server failed
does the request fail (EIO), after at most ``params.worst_case_seconds()``.  This
module adds what is particular to a replicated disk: the probe that chooses the size
and features, the queries of writes, and flush, which goes to every server an
attempt left unflushed writes on.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from multihttp import request
from multihttp.params import Params
from multihttp.pool import Pool, make_ssl_context
from multihttp.probe import check_server, probe_all
from multihttp.runner import AllServersFailed, Runner
from multihttp.server import Endpoint, Server, basic_auth
from multihttp.wire import Connection

__all__ = ["AllServersFailed", "Attempt", "Client", "stderr_log"]

#: One attempt of a request on one server: ``op(conn, server, *args)`` returns True when
#: it left written data on that server not yet durable (a later flush must go there).
Attempt = Callable[..., bool]

_ZEROS = bytes(1 << 20)


def stderr_log(msg: str) -> None:
    print(f"multihttp: {msg}", file=sys.stderr, flush=True)


class Client:
    def __init__(self, p: Params, log: Callable[[str], None] = stderr_log) -> None:
        self.p = p
        self.log = log
        self.auth = basic_auth(p, p.urls, log)
        self.servers: list[Server] = []
        self.size: int | None = None
        self.features: frozenset[str] = frozenset()
        self.buffered = False       # send ?flush=n (then flush must PATCH)
        self._lock = threading.Lock()          # guards _dirty
        self._probe_lock = threading.Lock()
        self._dirty: set[int] = set()
        self.runner = Runner(p, self._verify, log)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Build the pools (called in nbdkit's after_fork: no sockets cross a fork)."""
        ctx = make_ssl_context(self.p) if any(u.scheme == "https" for u in self.p.urls) else None
        self.servers = [Server(i, Pool(u, self.p, ctx), Endpoint(u.path, self.auth, u.label))
                        for i, u in enumerate(self.p.urls)]
        self.runner.servers = self.servers

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
                self.runner.current = chosen.index
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

    # -- the failover loop (runner.py) -------------------------------------

    def _verify(self, s: Server, conn: Connection) -> bool:
        return check_server(s, conn, self.size, self.p.device_size)

    def run(self, what: Any, op: Attempt, *args: Any) -> Server:
        """Run ``op(conn, server, *args)`` with retries and failover; returns the server
        that answered, after recording it as dirty when the op says so.

        ``what`` names the request for messages: a string or (op, count, offset),
        formatted only when something is logged (this is the hot path).
        """
        if self.size is None:
            self.ensure_probed()
        s, dirty = self.runner.run(what, op, *args)
        if dirty:
            with self._lock:
                self._dirty.add(s.index)
        return s

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
            err, _ = self.runner.on_server(s, "flush", self._flush, ())
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

