"""Probing servers: HEAD for size and range support, OPTIONS for features."""

from __future__ import annotations

from multihttp import request
from multihttp.errors import FinalError, ServerFault
from multihttp.server import Server
from multihttp.wire import Connection


class ProbeError(Exception):
    """No usable server; ``lines`` says why for each URL."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def check_server(server: Server, conn: Connection, expected_size: int | None,
                 device_size: int | None) -> bool:
    """HEAD (and OPTIONS) ``server`` on ``conn``; raise ServerFault if unusable.

    ``expected_size`` is the export size already chosen, if any.  A server
    whose size differs from it is excluded for good: its bytes cannot be the
    same disk.  Returns whether ``conn`` is still open for another request
    (HTTP/1.0 servers close after each reply).
    """
    ep = server.endpoint
    info = request.head(conn, ep)
    if not info.ranges:
        raise ServerFault(f"{ep.label}: no 'Accept-Ranges: bytes'")
    if info.size <= 0:
        raise ServerFault(f"{ep.label}: no positive Content-Length")
    if device_size is not None and info.size < device_size:
        server.excluded = (f"{ep.label}: size {info.size} is smaller than "
                           f"device-size {device_size}")
        raise ServerFault(server.excluded)
    if expected_size is not None and device_size is None and info.size != expected_size:
        server.excluded = (f"{ep.label}: size {info.size} differs from the chosen size "
                           f"{expected_size}; not using this server")
        raise ServerFault(server.excluded)
    server.size = info.size
    if info.closes:
        # An HTTP/1.0-style server: ask OPTIONS on a connection of its own.
        extra = server.pool.new_connection(budget=server.pool.params.connect_timeout)
        try:
            server.features = request.options(extra, ep)
        finally:
            server.pool.discard(extra)
    else:
        server.features = request.options(conn, ep)
    server.verified = True
    return not info.closes


def probe_all(servers: list[Server], device_size: int | None, log
              ) -> tuple[int, Server | None]:
    """Probe every server in order, each bounded by connect-timeout.

    Returns (export size, the first usable server or None).  Raises
    ProbeError when no server answers and there is no device-size, or
    FinalError when credentials are refused everywhere.
    """
    reasons: list[str] = []
    chosen: Server | None = None
    size = device_size
    auth_refused = 0
    for s in servers:
        try:
            # The probe uses connect-timeout for its whole exchange, not the
            # data timeout (the old plugin leaked its probe timeout into I/O).
            conn = s.pool.new_connection(budget=s.pool.params.connect_timeout)
            try:
                check_server(s, conn, size, device_size)
            finally:
                s.pool.discard(conn)
        except FinalError as e:
            auth_refused += 1
            reasons.append(str(e))
            log(str(e))
            continue
        except (ServerFault, OSError) as e:
            msg = s.failure(e)
            reasons.append(msg)
            log(msg)
            continue
        if chosen is None:
            chosen = s
            if size is None:
                size = s.size
            elif s.size != size:
                log(f"{s.label}: size {s.size}, exporting device-size {size}")
    if chosen is None and (device_size is None or auth_refused):
        raise ProbeError(reasons)
    assert size is not None
    return size, chosen
