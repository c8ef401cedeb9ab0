"""HTTP request handling: one handler instance per client connection.

Routes (ovirt-imageio's images API as the model, hexz serve's names for snapshots):
  HEAD|GET  /, /disk, /memory      size, ranged reads (206), whole device (200)
  PUT       /                      write a body at the Content-Range offset
  PATCH     /                      {"op":"zero",...} or {"op":"flush"}
  OPTIONS   any route or *         Allow + supported features
  GET       /extents (/disk/extents, /memory/extents)   allocation map
  GET       /info                  JSON metadata
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import select
import socket
import ssl
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from nbdsuite.httprange import (
    MalformedRange,
    UnsatisfiableRange,
    format_content_range,
    format_unsatisfied,
    parse_put_offset,
    parse_range,
)

from .backend import Backend
from .body import BodyAborted, BodyError, read_chunked, read_exact
from .deadline import HEADER as DEADLINE_HEADER
from .deadline import parse_deadline, stale_reason

log = logging.getLogger("http_disk_server")

MAX_REQUEST_LINE = 8192
MAX_PATCH_BODY = 64 << 10
# Unread bodies up to this size are read and dropped after a refusal, so the
# keep-alive connection stays usable; larger ones close the connection.
MAX_DRAIN = 1 << 20
IO_CHUNK = 1 << 20
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 << 20

METHODS = ("GET", "HEAD", "PUT", "PATCH", "OPTIONS")
_DIGITS_RE = re.compile(r"\d{1,19}")


class HTTPFailure(Exception):
    """Ends a request with an error status and a one-line reason."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def _status_for_oserror(err: OSError) -> int:
    if err.errno == errno.ENOSPC:
        return HTTPStatus.INSUFFICIENT_STORAGE
    if err.errno in (errno.EROFS, errno.EPERM, errno.EACCES):
        return HTTPStatus.FORBIDDEN
    return HTTPStatus.INTERNAL_SERVER_ERROR


class DiskRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http-disk-server/1"
    sys_version = ""
    disable_nagle_algorithm = True  # small replies must not wait for delayed ACKs

    def version_string(self) -> str:
        return self.server_version

    # ---- connection lifecycle ---------------------------------------------

    def setup(self) -> None:
        cfg = self.server.config
        self.timeout = cfg.timeout
        sock = self.request
        sock.settimeout(cfg.timeout)
        if cfg.ssl_context is not None:
            # The handshake runs here, in the connection's own thread, bounded by the timeout.
            sock = cfg.ssl_context.wrap_socket(sock, server_side=True)
            self.request = sock
        self._linger = False
        self._buf: bytearray | None = None
        super().setup()
        self.server.register(self)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.unregister(self)
        if self._linger:
            self._lingering_close()
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.close()
            except OSError:
                pass

    def abort_connection(self) -> None:
        """Called from the shutdown thread: unblock this connection's reads and writes."""
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass

    def _lingering_close(self) -> None:
        # After refusing a request whose body was not read, half-close and drop
        # what the client still sends for a moment: closing with unread data
        # sends a RST, which can destroy the reply before the client reads it.
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            dropped = 0
            while dropped < LINGER_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(left)
                data = self.connection.recv(65536)
                if not data:
                    break
                dropped += len(data)
        except OSError:
            pass

    def handle_one_request(self) -> None:
        self.command = None
        self.request_version = self.default_request_version
        self.requestline = ""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except (TimeoutError, OSError) as e:
            # Idle keep-alive connections end here after the socket timeout.
            log.debug("closing connection from %s: %s", self.client_address[0], e)
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        with self.server.request_in_flight(self):
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = ""
                self.request_version = "HTTP/1.1"
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG,
                                f"request line longer than {MAX_REQUEST_LINE} bytes")
                return
            if not self.parse_request():
                return
            if self.request_version == "HTTP/0.9":
                self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
                return
            try:
                self._dispatch()
            except BodyAborted as e:
                log.info("%s: %s; nothing written", self.requestline, e)
                self.close_connection = True
                try:  # best effort: the client may still be reading
                    self._reply(HTTPStatus.BAD_REQUEST, f"{e}; nothing written\n".encode(),
                                "text/plain; charset=utf-8")
                except OSError:
                    pass
            except (BrokenPipeError, ConnectionResetError, TimeoutError) as e:
                log.info("%s: client connection lost: %s", self.requestline, e)
                self.close_connection = True
            except Exception:
                # A bug, not a client or device problem: keep the traceback, answer 500
                # if nothing was sent yet, and drop this connection only.
                log.exception("%s: internal error", self.requestline)
                self.close_connection = True
                try:
                    self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n",
                                "text/plain; charset=utf-8")
                except OSError:
                    pass
            if self.server.stopping:
                self.close_connection = True

    def handle_expect_100(self) -> bool:
        # Defer "100 Continue" until the request has been checked, so a refused
        # PUT never makes the client send its body.
        return True

    # ---- logging: request lines only, never headers (they may hold credentials) ----

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        if self.server.config.verbose:
            log.info("%s %s", self.address_string(), format % args)

    def address_string(self) -> str:
        return str(self.client_address[0])

    # ---- responses ---------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        """stdlib hook for protocol errors: answer with a plain one-line reason."""
        reason = message or self.responses.get(code, ("error",))[0]
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # A broken request line leaves the version at 0.9, which would drop
            # the status line; HTTP/0.9 itself is not supported.
            self.request_version = "HTTP/1.0"
        self._reply(code, reason.encode("utf-8", "replace") + b"\n", "text/plain; charset=utf-8")

    def _reply(self, code: int, body: bytes = b"", content_type: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        if self.server.stopping:
            self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _reply_json(self, obj, code: int = HTTPStatus.OK, headers: dict[str, str] | None = None
                    ) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self._reply(code, body, "application/json", headers)

    def _fail(self, failure: HTTPFailure) -> None:
        # 503 while DRBD is not ready is routine and may come every second: not logged.
        # A stale write refused (412) is always worth one line: a replica was stalled.
        if (failure.status >= 500 and failure.status != HTTPStatus.SERVICE_UNAVAILABLE) \
                or failure.status == HTTPStatus.PRECONDITION_FAILED \
                or self.server.config.verbose:
            log.warning("%s: %d %s", self.requestline, failure.status, failure.reason)
        self._finish_unread_body()
        self._reply(failure.status, failure.reason.encode("utf-8", "replace") + b"\n",
                    "text/plain; charset=utf-8", failure.headers)

    # ---- dispatch -------------------------------------------------------------

    def _dispatch(self) -> None:
        self._body_read = False
        path, _, query = self.path.partition("?")
        self._query = parse_qs(query, keep_blank_values=True)
        try:
            if self.command not in METHODS:
                raise HTTPFailure(HTTPStatus.METHOD_NOT_ALLOWED,
                                  f"method {self.command} is not supported",
                                  {"Allow": ", ".join(self._allowed())})
            self._check_auth()
            if self.command == "OPTIONS":
                self._do_options(path)
                return
            if path == "/info" and self.command in ("GET", "HEAD"):
                self._do_info()
                return
            suffix = ""
            if path.endswith("/extents"):
                path, suffix = path[: -len("/extents")] or "/", "/extents"
            backend = self._route(path)
            if suffix:
                if self.command not in ("GET", "HEAD"):
                    raise HTTPFailure(HTTPStatus.METHOD_NOT_ALLOWED,
                                      f"{self.command} is not allowed on {self.path}",
                                      {"Allow": "GET, HEAD, OPTIONS"})
                self._reply_json([e.to_json() for e in backend.extents()])
            elif self.command in ("GET", "HEAD"):
                self._do_get(backend)
            elif self.command == "PUT":
                self._do_put(backend)
            else:
                self._do_patch(backend)
        except HTTPFailure as f:
            self._fail(f)
        except OSError as e:
            if isinstance(e, (BrokenPipeError, ConnectionResetError, TimeoutError)):
                raise
            # Device errors: the reason names the device and offset (BackendError).
            self._fail(HTTPFailure(_status_for_oserror(e), str(e)))

    def _allowed(self) -> list[str]:
        if self.server.config.read_only:
            return ["OPTIONS", "GET", "HEAD"]
        return ["OPTIONS", "GET", "HEAD", "PUT", "PATCH"]

    def _check_auth(self) -> None:
        auth = self.server.config.auth
        if auth is not None and not auth.check(self.headers.get("Authorization")):
            raise HTTPFailure(HTTPStatus.UNAUTHORIZED, "authentication required",
                              {"WWW-Authenticate": auth.challenge()})

    def _route(self, path: str) -> Backend:
        routes = self.server.routes
        if routes is None:
            raise HTTPFailure(HTTPStatus.SERVICE_UNAVAILABLE, self.server.not_ready_reason,
                              {"Retry-After": "1"})
        backend = routes.get(path)
        if backend is None:
            raise HTTPFailure(HTTPStatus.NOT_FOUND, f"no such resource: {path}")
        return backend

    def _flag(self, name: str, default: bool) -> bool:
        values = self._query.get(name)
        if not values:
            return default
        v = values[-1].lower()
        if v in ("y", "yes", "true", "1"):
            return True
        if v in ("n", "no", "false", "0"):
            return False
        raise HTTPFailure(HTTPStatus.BAD_REQUEST, f"query parameter {name}={values[-1]!r} "
                          "must be y or n")

    # ---- OPTIONS / info -----------------------------------------------------

    def _do_options(self, path: str) -> None:
        if path != "*":
            if path.endswith("/extents"):
                path = path[: -len("/extents")] or "/"
            if path != "/info":
                self._route(path)
        cfg = self.server.config
        features = ["extents"] if cfg.read_only else ["zero", "flush", "extents",
                                                      "write_deadline"]
        # multi_conn: a flush covers writes completed on every connection (one shared
        # fd, fdatasync), so clients may spread I/O over several connections.
        self._reply_json({"features": features,
                          "max_readers": cfg.max_connections,
                          "max_writers": cfg.max_writers,
                          "multi_conn": True},
                         headers={"Allow": ", ".join(self._allowed())})

    def _do_info(self) -> None:
        cfg = self.server.config
        info: dict = {"read_only": cfg.read_only, "max_put_size": cfg.max_put_size}
        routes = self.server.routes
        if routes is None:
            info["ready"] = False
            info["reason"] = self.server.not_ready_reason
        else:
            info["ready"] = True
            info["routes"] = {p: b.info() for p, b in routes.items()}
        info.update(cfg.extra_info)
        self._reply_json(info)

    # ---- reads ------------------------------------------------------------------

    def _do_get(self, backend: Backend) -> None:
        size = backend.size
        value = self.headers.get("Range")
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if value is None or self.command == "HEAD":
            code, first, length = HTTPStatus.OK, 0, size
        else:
            try:
                first, last = parse_range(value, size)
            except MalformedRange as e:
                raise HTTPFailure(HTTPStatus.BAD_REQUEST, str(e)) from e
            except UnsatisfiableRange as e:
                raise HTTPFailure(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, str(e),
                                  {"Content-Range": format_unsatisfied(size)}) from e
            code, length = HTTPStatus.PARTIAL_CONTENT, last - first + 1
            headers["Content-Range"] = format_content_range(first, last, size)
        fd = backend.sendfile_fd()
        use_sendfile = (self.server.config.sendfile and fd is not None
                        and not isinstance(self.connection, ssl.SSLSocket))
        first_chunk = None
        if not use_sendfile and length and self.command != "HEAD":
            # Read the first chunk before the status line, so a read error can
            # still be reported as an error status instead of a cut body.
            first_chunk = self._read_chunk(backend, first, min(length, IO_CHUNK))
        self.send_response(code)
        if self.server.stopping:
            self.send_header("Connection", "close")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        # From here the status is sent: any failure can only cut the connection.
        keep_close = self.close_connection
        self.close_connection = True
        try:
            if use_sendfile:
                self._send_sendfile(backend, fd, first, length)
            else:
                self._send_pread(backend, first, length, first_chunk)
        except OSError as e:
            if not isinstance(e, (BrokenPipeError, ConnectionResetError, TimeoutError)):
                log.error("%s: %s; connection closed mid-body", self.requestline, e)
            return
        self.close_connection = keep_close or self.server.stopping

    def _read_chunk(self, backend: Backend, offset: int, n: int) -> memoryview:
        if self._buf is None:
            self._buf = bytearray(IO_CHUNK)
        view = memoryview(self._buf)[:n]
        backend.readinto(view, offset)
        return view

    def _send_pread(self, backend: Backend, offset: int, length: int,
                    first_chunk: memoryview | None) -> None:
        done = 0
        while done < length:
            if first_chunk is not None:
                chunk, first_chunk = first_chunk, None
            else:
                chunk = self._read_chunk(backend, offset + done, min(length - done, IO_CHUNK))
            self.wfile.write(chunk)
            done += len(chunk)

    def _send_sendfile(self, backend: Backend, fd: int, offset: int, length: int) -> None:
        sock = self.connection
        sockfd = sock.fileno()
        timeout = self.server.config.timeout
        done = 0
        while done < length:
            try:
                n = _os_sendfile(sockfd, fd, offset + done, length - done)
            except BlockingIOError:
                # The socket has a timeout, hence is non-blocking: wait for room.
                if not _wait_writable(sockfd, timeout):
                    raise TimeoutError("client stopped reading") from None
                continue
            except OSError as e:
                if done == 0 and e.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    # This device cannot be spliced: fall back for good.
                    self.server.config.sendfile = False
                    self._send_pread(backend, offset, length, None)
                    return
                raise
            if n == 0:
                raise OSError(errno.EIO, f"{backend.name}: unexpected end of device at offset "
                              f"{offset + done}")
            done += n

    # ---- writes -----------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.server.config.read_only:
            raise HTTPFailure(HTTPStatus.FORBIDDEN, "the server is read-only")

    def _do_put(self, backend: Backend) -> None:
        self._check_writable()
        cfg = self.server.config
        size = backend.size
        cr = self.headers.get("Content-Range")
        try:
            offset = parse_put_offset(cr) if cr is not None else 0
        except MalformedRange as e:
            raise HTTPFailure(HTTPStatus.BAD_REQUEST, str(e)) from e
        flush = self._flag("flush", True)
        deadline = self._deadline()
        length = self._declared_length()
        unsatisfied = {"Content-Range": format_unsatisfied(size)}
        if length is not None:
            if length > cfg.max_put_size:
                raise HTTPFailure(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  f"body of {length} bytes exceeds the limit of "
                                  f"{cfg.max_put_size} bytes")
            if offset + length > size:
                raise HTTPFailure(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                  f"write of {length} bytes at offset {offset} ends past the "
                                  f"size {size}", unsatisfied)
        elif offset > size:
            raise HTTPFailure(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                              f"write at offset {offset} starts past the size {size}",
                              unsatisfied)
        big = length is None or length > IO_CHUNK
        if big:
            # Bounds the memory held by buffered bodies to max_writers * max_put_size.
            if not self.server.writer_slots.acquire(timeout=cfg.timeout):
                raise HTTPFailure(HTTPStatus.SERVICE_UNAVAILABLE, "too many writers",
                                  {"Retry-After": "1"})
        try:
            self._send_continue()
            # The whole body is received before anything is written, so a body
            # cut short writes nothing at all.
            body = self._read_body(length, cfg.max_put_size)
            if offset + len(body) > size:
                raise HTTPFailure(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                  f"write of {len(body)} bytes at offset {offset} ends past "
                                  f"the size {size}", unsatisfied)
            with self.server.device_write():
                self._check_deadline(deadline)
                backend.write(body, offset)
                if flush:
                    backend.flush()
        finally:
            if big:
                self.server.writer_slots.release()
        self._reply(HTTPStatus.OK)

    def _deadline(self) -> float | None:
        try:
            return parse_deadline(self.headers.get(DEADLINE_HEADER))
        except ValueError as e:
            raise HTTPFailure(HTTPStatus.BAD_REQUEST, str(e)) from e

    def _check_deadline(self, deadline: float | None) -> None:
        # Called inside the device-write section, right before the data reaches the
        # device: the later the check, the smaller the window for a stale write.
        reason = stale_reason(deadline, time.time(), self.connection)
        if reason is not None:
            raise HTTPFailure(HTTPStatus.PRECONDITION_FAILED, reason)

    def _declared_length(self) -> int | None:
        """The Content-Length, or None for a chunked body."""
        te = self.headers.get("Transfer-Encoding")
        cl = self.headers.get("Content-Length")
        if te is not None:
            if cl is not None:
                raise HTTPFailure(HTTPStatus.BAD_REQUEST,
                                  "both Content-Length and Transfer-Encoding are present")
            if te.strip().lower() != "chunked":
                raise HTTPFailure(HTTPStatus.BAD_REQUEST,
                                  f"Transfer-Encoding {te!r} is not supported (only chunked)")
            return None
        if cl is None:
            raise HTTPFailure(HTTPStatus.LENGTH_REQUIRED,
                              "a Content-Length or a chunked body is required")
        cl = cl.strip()
        if not _DIGITS_RE.fullmatch(cl):
            raise HTTPFailure(HTTPStatus.BAD_REQUEST, f"malformed Content-Length {cl!r}")
        return int(cl)

    def _expects_continue(self) -> bool:
        return (self.headers.get("Expect", "").lower() == "100-continue"
                and self.request_version >= "HTTP/1.1")

    def _send_continue(self) -> None:
        if self._expects_continue():
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()

    def _finish_unread_body(self) -> None:
        """Keep the connection usable after refusing a request whose body is unread."""
        if self._body_read:
            return
        self._body_read = True
        te = self.headers.get("Transfer-Encoding")
        cl = (self.headers.get("Content-Length") or "0").strip()
        if te is None and cl == "0":
            return
        if (te is None and not self._expects_continue() and _DIGITS_RE.fullmatch(cl)
                and int(cl) <= MAX_DRAIN):
            try:
                read_exact(self.rfile, int(cl))
                return
            except (BodyAborted, OSError):
                pass
        # With Expect: 100-continue the client should not send the body at all;
        # either way the connection cannot be reused safely.
        self.close_connection = True
        self._linger = True

    def _read_body(self, length: int | None, limit: int) -> bytearray:
        self._body_read = True
        try:
            if length is not None:
                return read_exact(self.rfile, length)
            return read_chunked(self.rfile, limit)
        except BodyError as e:
            # The rest of the body cannot be delimited: the connection ends after the reply.
            self.close_connection = True
            self._linger = e.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            raise HTTPFailure(e.status, e.reason) from e

    def _do_patch(self, backend: Backend) -> None:
        self._check_writable()
        length = self._declared_length()
        if length is not None and length > MAX_PATCH_BODY:
            raise HTTPFailure(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              f"PATCH body of {length} bytes exceeds {MAX_PATCH_BODY} bytes")
        self._send_continue()
        body = self._read_body(length, MAX_PATCH_BODY)
        try:
            msg = json.loads(body)
        except ValueError as e:
            raise HTTPFailure(HTTPStatus.BAD_REQUEST, f"PATCH body is not JSON: {e}") from e
        if not isinstance(msg, dict):
            raise HTTPFailure(HTTPStatus.BAD_REQUEST, "PATCH body must be a JSON object")
        op = msg.get("op")
        if op == "flush":
            with self.server.device_write():
                backend.flush()
        elif op == "zero":
            offset, size = msg.get("offset"), msg.get("size")
            flush = msg.get("flush", False)
            for name, v in (("offset", offset), ("size", size)):
                if type(v) is not int or v < 0:
                    raise HTTPFailure(HTTPStatus.BAD_REQUEST,
                                      f"zero: {name} must be a non-negative integer")
            if not isinstance(flush, bool):
                raise HTTPFailure(HTTPStatus.BAD_REQUEST, "zero: flush must be true or false")
            if offset + size > backend.size:
                raise HTTPFailure(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                  f"zero of {size} bytes at offset {offset} ends past the size "
                                  f"{backend.size}",
                                  {"Content-Range": format_unsatisfied(backend.size)})
            deadline = self._deadline()
            with self.server.device_write():
                self._check_deadline(deadline)
                backend.zero(offset, size)
                if flush:
                    backend.flush()
        else:
            raise HTTPFailure(HTTPStatus.BAD_REQUEST, f"unknown PATCH op {op!r}")
        self._reply(HTTPStatus.OK)


def _os_sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    return os.sendfile(out_fd, in_fd, offset, count)


def _wait_writable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(timeout * 1000))
