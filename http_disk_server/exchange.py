"""One HTTP exchange as resources see it: a Request to read and a Response to send.

Both wrap the connection's handler, so resources never touch sockets, the standard
library's handler internals or the server: what a second face (S3) needs is here.
"""

from __future__ import annotations

import json
from email.message import Message
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from . import connection, deadline, framing
from .backend import Backend
from .body import read_chunked, read_exact
from .errors import HTTPError
from .redact import redact_target

if TYPE_CHECKING:
    from .handler import DiskRequestHandler

_YES = ("y", "yes", "true", "1")
_NO = ("n", "no", "false", "0")


class Request:
    def __init__(self, handler: DiskRequestHandler) -> None:
        self._handler = handler
        self.method: str = handler.command
        #: for logs: the request line with credentials in its query masked
        self.line: str = redact_target(handler.requestline)
        #: the request target as received (percent-encoded path and query)
        self.target: str = handler.path
        path, _, query = handler.path.partition("?")
        self.path = path
        self._query = parse_qs(query, keep_blank_values=True)
        self.headers: Message = handler.headers
        self.body_pending = True   # until read_body() or discard_body()

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def query(self, name: str, default: str | None = None) -> str | None:
        """A query parameter's value (the last one wins), or ``default``."""
        values = self._query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool) -> bool:
        """A ``?name=y|n`` query parameter (the last one wins); 400 when it is neither."""
        values = self._query.get(name)
        if not values:
            return default
        v = values[-1].lower()
        if v in _YES:
            return True
        if v in _NO:
            return False
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"query parameter {name}={values[-1]!r} "
                        "must be y or n")

    def deadline(self) -> float | None:
        """The ``Write-Deadline`` this request carries; 400 when malformed."""
        try:
            return deadline.parse_deadline(self.header(deadline.HEADER))
        except ValueError as e:
            raise HTTPError(HTTPStatus.BAD_REQUEST, str(e)) from e

    def check_deadline(self, when: float | None) -> None:
        """Raise StaleWrite when a write with deadline ``when`` must not be applied now."""
        deadline.check(when, self._handler.connection)

    def body_length(self) -> int | None:
        """The declared body length, None for chunked (400/411 when framing is bad)."""
        return framing.declared_length(self.headers)

    def read_body(self, length: int | None, limit: int) -> bytearray:
        """The whole body (``length`` from body_length()): 100 Continue first if the client
        waits for it. Raises BodyAborted or BodyError (the connection then closes)."""
        self.body_pending = False
        h = self._handler
        if connection.expects_continue(self.headers, h.request_version):
            connection.send_continue(h.wfile)
        if length is not None:
            return read_exact(h.rfile, length)
        return read_chunked(h.rfile, limit)

    def discard_body(self) -> bool:
        """After a refusal: drop a small unread body. False when the connection must close."""
        if not self.body_pending:
            return True
        self.body_pending = False
        h = self._handler
        return connection.drain_body(h.rfile, self.headers, h.request_version)


class Response:
    def __init__(self, handler: DiskRequestHandler) -> None:
        self._handler = handler
        self._head_only = handler.command == "HEAD"
        self.started = False

    def close_connection(self, linger: bool = False) -> None:
        """End the connection after this reply; ``linger``: the client may still be
        sending, drain before closing so the reply is not lost to a RST."""
        self._handler.close_connection = True
        self._handler.linger = self._handler.linger or linger

    def _start(self, status: int, headers: dict[str, str], length: int) -> None:
        h = self._handler
        self.started = True
        h.send_response(status)
        if h.close_connection or h.server.stopping:
            h.send_header("Connection", "close")
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(length))
        h.end_headers()

    def send(self, status: int = HTTPStatus.OK, body: bytes = b"",
             content_type: str | None = None, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if content_type:
            headers["Content-Type"] = content_type
        self._start(status, headers, len(body))
        if body and not self._head_only:
            self._handler.wfile.write(body)

    def send_no_body(self, status: int, headers: dict[str, str], length: int) -> None:
        """A reply that has no body by definition (304, or to HEAD) whose Content-Length
        is that of the representation it describes."""
        self._start(status, headers, length)

    def send_json(self, obj: object, status: int = HTTPStatus.OK,
                  headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send(status, body, "application/json", headers)

    def send_text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        """A one-line plain-text reply (errors)."""
        self.send(status, text.encode("utf-8", "replace") + b"\n", "text/plain; charset=utf-8",
                  headers)

    def send_range(self, status: int, headers: dict[str, str], backend: Backend,
                   offset: int, length: int) -> None:
        """Headers, then ``length`` bytes of ``backend`` from ``offset`` (none for HEAD)."""
        sender = self._handler.sender
        first = None if self._head_only else sender.prepare(backend, offset, length)
        self._start(status, headers, length)
        if self._head_only or length == 0:
            return
        # From here the status is sent: a failure can only cut the connection.
        h = self._handler
        closing, h.close_connection = h.close_connection, True
        sender.send(backend, offset, length, first)
        h.server.metrics.read_bytes.inc(length)
        h.close_connection = closing or h.server.stopping
