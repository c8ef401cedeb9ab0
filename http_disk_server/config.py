"""The server's settings, fixed at start (nothing changes them while it runs)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from .auth import BasicAuth

MiB = 1 << 20


@dataclass(frozen=True)
class Config:
    read_only: bool = False
    max_put_size: int = 128 * MiB
    timeout: float = 60.0             # socket timeout for idle and slow clients
    shutdown_timeout: float = 10.0    # how long SIGTERM waits for requests in flight
    max_connections: int = 64
    max_writers: int = 8              # PUT bodies buffered at once (bounds memory)
    verbose: bool = False
    auth: BasicAuth | None = None
    ssl_context: ssl.SSLContext | None = None
    metrics: bool = True              # serve GET /metrics
