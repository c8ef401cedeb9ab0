"""The HTTP/1.1 protocol of one client connection, through CPython's handler hooks.

``BaseHTTPRequestHandler.handle_one_request`` reads the request line, calls
``parse_request`` and then ``do_<METHOD>``; this class fills those hooks and hands every
request to the server's application (a Router) as a Request/Response pair. What is not
HTTP semantics lives elsewhere: connection plumbing in connection.py, body streaming in
streaming.py, routing and error replies in router.py.
"""

from __future__ import annotations

import logging
import ssl
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from . import connection, framing
from .exchange import Request, Response
from .redact import redact_target
from .router import METHODS
from .streaming import RangeSender

log = logging.getLogger("http_disk_server")

# CPython caps the request line at 64 KiB; nothing here needs more than this.
MAX_REQUEST_LINE = 8192


class DiskRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http-disk-server/1"
    sys_version = ""
    disable_nagle_algorithm = True  # small replies must not wait for delayed ACKs

    #: the status of the reply being sent (for metrics), None before one is
    status_code: int | None = None
    started_at = 0.0

    def version_string(self) -> str:
        return self.server_version

    def send_response(self, code: int, message: str | None = None) -> None:
        self.status_code = code
        super().send_response(code, message)

    # ---- connection lifecycle ------------------------------------------------------

    def setup(self) -> None:
        cfg = self.server.config
        self.timeout = cfg.timeout
        self.request.settimeout(cfg.timeout)
        if cfg.ssl_context is not None:
            # The handshake runs here, in the connection's own thread, bounded by the timeout.
            self.request = cfg.ssl_context.wrap_socket(self.request, server_side=True)
        self.linger = False   # drain the client's data before closing (see connection.py)
        super().setup()
        self.sender = RangeSender(self.connection, self.wfile, cfg.timeout,
                                  sendfile=cfg.ssl_context is None)
        self.server.register(self)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.unregister(self)
        if self.linger:
            connection.lingering_close(self.connection)
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.close()
            except OSError:
                pass

    def abort_connection(self) -> None:
        """Called from the shutdown thread: unblock this connection's reads and writes."""
        connection.abort(self.connection)

    # ---- request hooks ---------------------------------------------------------------

    def parse_request(self) -> bool:
        # The narrowest hook around a request: CPython calls it right after reading the
        # request line. The request counts as in flight from here (a graceful stop waits
        # for it, and does not close its connection as idle) until _serve() ends it.
        self.server.request_started(self)
        try:
            ok = self._accept_request()
        except BaseException:
            self.server.request_done(self)
            raise
        if not ok:
            self.server.request_done(self)
        return ok

    def _accept_request(self) -> bool:
        """CPython's parsing plus this server's framing rules; False once refused."""
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.command, self.requestline, self.request_version = None, "", "HTTP/1.1"
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG,
                            f"request line longer than {MAX_REQUEST_LINE} bytes")
            return False
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
            return False
        repeated = framing.repeated_header(self.headers)
        if repeated is not None:
            # Which value frames the body, or names the target, is ambiguous (RFC 9112
            # section 6.3): refuse before reading any of it, and close.
            self.linger = True
            self.send_error(HTTPStatus.BAD_REQUEST, f"the {repeated} header appears more "
                            "than once; nothing written")
            return False
        if self.command not in METHODS:
            # No do_<METHOD> hook: let the router answer 405 with an Allow header.
            self._serve()
            return False
        return True

    def handle_expect_100(self) -> bool:
        # Defer "100 Continue" until the request has been checked (Request.read_body), so
        # a refused PUT never makes the client send its body.
        return True

    def do_GET(self) -> None:  # noqa: N802 - CPython's hook names
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._serve()

    def _serve(self) -> None:
        try:
            self.server.app(Request(self), Response(self))
        finally:
            self.server.request_done(self)
            if self.server.stopping:
                self.close_connection = True

    # ---- replies and logs ------------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        """CPython's hook for protocol errors: a one-line reason, and close.  Plain text,
        unless the application speaks another error format (the S3 face's XML)."""
        reason = message or self.responses.get(code, ("error",))[0]
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # A broken request line leaves the version at 0.9, which would drop the
            # status line; HTTP/0.9 itself is not supported.
            self.request_version = "HTTP/1.0"
        render = getattr(self.server.app, "protocol_error", None)
        if render is not None:
            # The path only once this request's line parsed (command set): otherwise
            # ``path`` may still be the previous request's on this connection.
            render(Response(self), self.path if self.command else "/", code, reason)
        else:
            Response(self).send_text(code, reason)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        # Request lines only, never headers (they may hold credentials); only with -v.
        if self.server.config.verbose:
            log.info("%s %s", self.address_string(), redact_target(format % args))

    def address_string(self) -> str:
        return str(self.client_address[0])
