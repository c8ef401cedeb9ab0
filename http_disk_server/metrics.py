"""What ``GET /metrics`` reports, kept with prometheus_client in a registry of its own.

The server feeds it from three places: the HTTP server (requests by method and status,
their latency, requests in flight), the storage (each backend wrapped in a
:class:`MeteredBackend`: bytes written, fsync latency, snapshot blocks that fail their
checks) and the DRBD waiter (whether the device is still waited for).  Bytes read are
counted where a reply body is sent, since reads may bypass the backend (sendfile).
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from .backend import Backend, BackendError, Extent

PREFIX = "http_disk_server"
# Request latency: 100 us (a cached 4 KiB GET) to a minute (a large PUT with fsync).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests answered",
                                ["method", "status"], registry=r)
        self.latency = Histogram(f"{PREFIX}_request_seconds", "Time from the request line "
                                 "to the end of the reply", ["method"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(f"{PREFIX}_requests_in_flight", "Requests being served",
                               registry=r)
        self.read_bytes = Counter(f"{PREFIX}_read_bytes", "Image bytes sent in replies",
                                  registry=r)
        self.written_bytes = Counter(f"{PREFIX}_written_bytes", "Image bytes written",
                                     registry=r)
        self.fsync = Histogram(f"{PREFIX}_fsync_seconds", "Time of each fsync/fdatasync",
                               buckets=LATENCY_BUCKETS, registry=r)
        self.drbd_waiting = Gauge(f"{PREFIX}_drbd_waiting", "1 while the device cannot be "
                                  "opened yet because a DRBD peer is Primary", registry=r)
        self.snapshot_errors = Counter(f"{PREFIX}_snapshot_block_errors", "Snapshot blocks "
                                       "that failed their checks (CRC, size, hash) or could "
                                       "not be decompressed", registry=r)

    def request_done(self, method: str | None, status: int | None, seconds: float) -> None:
        method = method or "-"          # a request line too broken to name one
        self.requests.labels(method, str(status or 0)).inc()
        self.latency.labels(method).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MeteredBackend(Backend):
    """A backend that counts what goes through it, and otherwise is the backend."""

    def __init__(self, backend: Backend, metrics: Metrics) -> None:
        self._backend = backend
        self._metrics = metrics
        self.name = backend.name
        self.size = backend.size
        self.read_only = backend.read_only
        self.kind = backend.kind

    def sendfile_fd(self) -> int | None:
        return self._backend.sendfile_fd()

    def readinto(self, buf: memoryview, offset: int) -> None:
        try:
            self._backend.readinto(buf, offset)
        except BackendError:
            self._count_snapshot_error()
            raise

    def write(self, buf: memoryview, offset: int) -> None:
        self._backend.write(buf, offset)
        self._metrics.written_bytes.inc(len(buf))

    def zero(self, offset: int, length: int) -> None:
        self._backend.zero(offset, length)

    def flush(self) -> None:
        start = time.monotonic()
        self._backend.flush()
        if not self.read_only:
            self._metrics.fsync.observe(time.monotonic() - start)

    def extents(self) -> list[Extent]:
        try:
            return self._backend.extents()
        except BackendError:
            self._count_snapshot_error()
            raise

    def close(self) -> None:
        self._backend.close()

    def info(self) -> dict:
        return self._backend.info()

    def _count_snapshot_error(self) -> None:
        if self.kind == "snapshot":
            self._metrics.snapshot_errors.inc()
