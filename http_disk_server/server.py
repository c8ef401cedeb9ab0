"""The listening server: connection bookkeeping, limits and graceful stop.

It extends the standard library's ThreadingHTTPServer with what a disk server needs: a
bound on connections, TLS handshakes done in the worker thread (a slow client must not
block accept), and a shutdown that lets requests in flight finish for a bounded time
before forcing the remaining connections closed. What a request does is the business of
``app``, the Router the service installs before serving.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from .config import Config
from .metrics import Metrics

log = logging.getLogger("http_disk_server")


class DiskHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler_class: type, config: Config) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.config = config
        #: called with (Request, Response) for every request; set once, before serving
        self.app: Callable[[Any, Any], None] | None = None
        self.stopping = False
        #: what GET /metrics reports, fed by request_started/request_done
        self.metrics = Metrics()
        self._lock = threading.Condition()
        self._handlers: dict[Any, bool] = {}   # handler -> busy with a request
        self._active = 0                        # requests in flight
        self._conn_slots = threading.BoundedSemaphore(config.max_connections)
        super().__init__(address, handler_class)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can
        # stall for seconds without DNS and delay "Server ready!".
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    # --- connection limit -------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.stopping or not self._conn_slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._conn_slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._conn_slots.release()

    def _refuse(self, request: socket.socket) -> None:
        if self.config.ssl_context is None:
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish or fail the TLS handshake are routine: one line, no traceback.
        log.info("connection from %s ended: %s", client_address[0], sys.exc_info()[1])

    # --- request bookkeeping for graceful shutdown -------------------------

    def register(self, handler: Any) -> None:
        with self._lock:
            self._handlers[handler] = False

    def unregister(self, handler: Any) -> None:
        with self._lock:
            if self._handlers.pop(handler, False):
                self._active -= 1
            self._lock.notify_all()

    def request_started(self, handler: Any) -> None:
        with self._lock:
            if not self._handlers.get(handler):
                self._handlers[handler] = True
                self._active += 1
                handler.started_at = time.monotonic()
                handler.status_code = None
                self.metrics.in_flight.inc()

    def request_done(self, handler: Any) -> None:
        """Idempotent: the request (if any) of ``handler`` is over."""
        with self._lock:
            if self._handlers.get(handler):
                self._handlers[handler] = False
                self._active -= 1
                self.metrics.in_flight.dec()
                self.metrics.request_done(handler.command, handler.status_code,
                                          time.monotonic() - handler.started_at)
            self._lock.notify_all()

    def begin_stop(self) -> None:
        """Stop new requests: idle keep-alive connections are closed now."""
        with self._lock:
            self.stopping = True
            for handler, busy in self._handlers.items():
                if not busy:
                    handler.abort_connection()

    def wait_requests(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self._active == 0, timeout)

    def abort_all(self) -> None:
        with self._lock:
            for handler in self._handlers:
                handler.abort_connection()
