"""Assembles the server: bind, open the device (or wait for DRBD), route, serve, stop.

Kept apart from the command line so tests can run a whole server in-process with fake
open/stat/drbdsetup, which fakes cannot reach in a child process.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from . import fileio
from .backend import Backend
from .config import Config
from .drbd import LOCAL, DeviceWaiter, System
from .handler import DiskRequestHandler
from .metrics import MeteredBackend, Metrics
from .resources.checksum import AlgorithmsResource, ChecksumResource
from .resources.extents import ExtentsResource
from .resources.images import ImageResource
from .resources.info import InfoResource, ServerOptions
from .resources.metrics import MetricsResource
from .router import Router
from .s3.gateway import S3Settings, open_gateway
from .server import DiskHTTPServer
from .storage import Storage
from .writes import WriteGate

log = logging.getLogger("http_disk_server")

# Bounds on the last steps of a shutdown, after requests have had their grace time.
WRITE_DRAIN_SECONDS = 30.0
FLUSH_SECONDS = 30.0

#: URL paths of the images: the device at "/"; a snapshot's streams also by hexz serve's
#: names ("/memory" only when the archive has that stream).
DISK_PATHS = {"/": "disk"}
SNAPSHOT_PATHS = {"/": "disk", "/disk": "disk", "/memory": "memory"}


def disk_api(storage: Storage, paths: dict[str, str], config: Config, gate: WriteGate,
             metrics: Metrics, metadata: dict | None = None) -> Router:
    """The disk API: each image path, its ``/extents`` and ``/checksum``,
    ``/checksum/algorithms``, ``/info``, ``/metrics`` and ``OPTIONS *``."""
    routes: list[tuple[str, Any]] = []
    for path, name in paths.items():
        routes.append((re.escape(path), ImageResource(storage, name, config, gate)))
        base = "" if path == "/" else path
        routes.append((re.escape(f"{base}/extents"), ExtentsResource(storage, name, config)))
        routes.append((re.escape(f"{base}/checksum"), ChecksumResource(storage, name, config)))
    routes.append(("/checksum/algorithms", AlgorithmsResource(config)))
    routes.append(("/info", InfoResource(storage, paths, config, metadata)))
    if config.metrics:
        routes.append(("/metrics", MetricsResource(metrics, config)))
    routes.append((r"\*", ServerOptions(config)))
    return Router(routes, auth=config.auth, verbose=config.verbose)


class DiskService:
    def __init__(self, config: Config, ip: str, port: int, disk: str | None = None,
                 snapshot: str | None = None, verify: str = "crc", system: System = LOCAL,
                 drbd_interval: float = 1.0, s3: S3Settings | None = None) -> None:
        if [disk, snapshot, s3].count(None) != 2:
            raise ValueError("exactly one of disk, snapshot and s3 is required")
        self.s3 = s3
        self.config = config
        self.disk = disk
        self.snapshot = snapshot
        self.verify = verify
        self._system = system
        self._drbd_interval = drbd_interval
        self.stop_event = threading.Event()
        self.storage = Storage()
        self.gate = WriteGate(config.max_writers)
        self.server = DiskHTTPServer((ip, port), DiskRequestHandler, config)
        self.waiter: DeviceWaiter | None = None
        self._archive = None
        self._catalog = None
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
        """Open the storage and install the routes. True when serving; False when
        waiting for DRBD (requests get 503 until the device opens)."""
        if self.s3 is not None:
            self.server.app, self._catalog = open_gateway(self.s3, self.config,
                                                          self.server.metrics)
            return True
        if self.snapshot is not None:
            from .snapshot import open_snapshot  # needs hxz only in snapshot mode
            streams, metadata, self._archive = open_snapshot(self.snapshot, self.verify)
            paths = {p: n for p, n in SNAPSHOT_PATHS.items() if n in streams}
            self.server.app = disk_api(self.storage, paths, self.config, self.gate,
                                       self.server.metrics, metadata)
            self._attach(streams)
            return True
        assert self.disk is not None
        path = self.disk
        self.server.app = disk_api(self.storage, DISK_PATHS, self.config, self.gate,
                                   self.server.metrics)

        def open_backend() -> Backend:
            return fileio.open(path, self.config.read_only, opener=self._system.open)

        def on_open(backend: Backend) -> None:
            self.server.metrics.drbd_waiting.set(0)
            self._attach({"disk": backend})

        def on_wait(reason: str) -> None:
            self.server.metrics.drbd_waiting.set(1)
            self.storage.waiting(f"{path} cannot be opened yet: {reason}; retry later")

        self.waiter = DeviceWaiter(path, open_backend, on_open, self.stop_event,
                                   system=self._system, interval=self._drbd_interval,
                                   on_wait=on_wait)
        return self.waiter.first_attempt()

    def _attach(self, backends: dict[str, Backend]) -> None:
        metered = {name: MeteredBackend(b, self.server.metrics) for name, b in backends.items()}
        self.storage.attach(metered)

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
        if not self.gate.close(WRITE_DRAIN_SECONDS):
            log.error("a device write did not finish within %g s", WRITE_DRAIN_SECONDS)
        for backend in self.storage.backends():
            self._bounded(backend.flush, f"flush of {backend.name}")
            try:
                backend.close()
            except OSError as e:
                log.error("closing %s: %s", backend.name, e)
        if self._archive is not None:
            self._archive.close()
        if self._catalog is not None:
            self._catalog.close()

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
