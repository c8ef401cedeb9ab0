"""Assembles the server: bind, open the device (or wait for DRBD), serve, stop.

Kept apart from the command line so tests can run a whole server in-process
with fake open/stat/drbdsetup, which fakes cannot reach in a child process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from .backend import Backend
from .drbd import DeviceWaiter
from .fileio import open_device
from .handler import DiskRequestHandler
from .server import Config, DiskHTTPServer

log = logging.getLogger("http_disk_server")

# Bounds on the last steps of a shutdown, after requests have had their grace time.
WRITE_DRAIN_SECONDS = 30.0
FLUSH_SECONDS = 30.0


class DiskService:
    def __init__(self, config: Config, ip: str, port: int, disk: str | None = None,
                 snapshot: str | None = None, opener: Callable[..., int] = os.open,
                 stat_fn: Callable[[str], Any] = os.stat,
                 run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 drbd_interval: float = 1.0) -> None:
        if (disk is None) == (snapshot is None):
            raise ValueError("exactly one of disk and snapshot is required")
        self.config = config
        self.disk = disk
        self.snapshot = snapshot
        self._opener = opener
        self._stat = stat_fn
        self._run = run
        self._drbd_interval = drbd_interval
        self.stop_event = threading.Event()
        self.server = DiskHTTPServer((ip, port), DiskRequestHandler, config)
        self.waiter: DeviceWaiter | None = None
        self._archive = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self.config.ssl_context else "http"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{port}/"

    def open(self) -> bool:
        """Open the storage. True when serving; False when waiting for DRBD."""
        if self.snapshot is not None:
            from .snapshot import open_snapshot  # needs hxz only in snapshot mode
            routes, info, self._archive = open_snapshot(self.snapshot)
            self.config.extra_info.update(info)
            self.server.set_routes(routes)
            return True
        assert self.disk is not None
        path = self.disk

        def open_backend() -> Backend:
            return open_device(path, self.config.read_only, opener=self._opener)

        def on_open(backend: Backend) -> None:
            self.server.set_routes({"/": backend})

        def on_wait(reason: str) -> None:
            self.server.not_ready_reason = f"{path} cannot be opened yet: {reason}; retry later"

        self.waiter = DeviceWaiter(path, open_backend, on_open, self.stop_event,
                                   stat_fn=self._stat, run=self._run,
                                   interval=self._drbd_interval, on_wait=on_wait)
        return self.waiter.first_attempt()

    def serve_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="http-accept",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, let requests finish (bounded), flush and close the device."""
        cfg = self.config
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        self.server.begin_stop()
        if not self.server.wait_requests(cfg.shutdown_timeout):
            log.warning("requests still in flight after %g s; closing their connections "
                        "(a PUT whose body was not complete writes nothing)",
                        cfg.shutdown_timeout)
            self.server.abort_all()
            self.server.wait_requests(2.0)
        if not self.server.close_writes(WRITE_DRAIN_SECONDS):
            log.error("a device write did not finish within %g s", WRITE_DRAIN_SECONDS)
        for backend in self.server.backends():
            self._bounded(backend.flush, f"flush of {backend.name}")
            try:
                backend.close()
            except OSError as e:
                log.error("closing %s: %s", backend.name, e)
        if self._archive is not None:
            self._archive.close()

    @staticmethod
    def _bounded(fn: Callable[[], None], what: str) -> None:
        # A hung device (e.g. DRBD with no quorum) must not keep the process alive.
        errors: list[BaseException] = []

        def call() -> None:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=call, daemon=True)
        t.start()
        t.join(FLUSH_SECONDS)
        if t.is_alive():
            log.error("%s did not finish within %g s", what, FLUSH_SECONDS)
        elif errors:
            log.error("%s failed: %s", what, errors[0])
