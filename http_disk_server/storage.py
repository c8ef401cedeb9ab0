"""What the server serves: named backends ("disk", and "memory" for a snapshot), once open.

A DRBD device may not open at start (another host is Primary): the server still listens,
and every request for a backend gets NotReady (503) with the reason, until the waiter
attaches the opened backend. Resources hold this object, never a backend directly.
"""

from __future__ import annotations

import threading

from .backend import Backend
from .errors import NotReady


class Storage:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backends: dict[str, Backend] | None = None
        self._reason = "the device is not open yet"

    def attach(self, backends: dict[str, Backend]) -> None:
        with self._lock:
            self._backends = dict(backends)

    def waiting(self, reason: str) -> None:
        """Record why the storage is not open yet (shown in 503 replies and GET /info)."""
        with self._lock:
            self._reason = reason

    @property
    def ready(self) -> bool:
        return self._backends is not None

    @property
    def reason(self) -> str:
        return self._reason

    def get(self, name: str) -> Backend:
        backends = self._backends
        if backends is None:
            raise NotReady(self._reason)
        return backends[name]

    def backends(self) -> list[Backend]:
        """Each open backend once."""
        unique = {id(b): b for b in (self._backends or {}).values()}
        return list(unique.values())
