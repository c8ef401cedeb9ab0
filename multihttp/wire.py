"""A minimal HTTP/1.1 client connection for the data path.

Why not http.client: measured on this machine, a 4 KiB ranged GET cost about
121 us through http.client (most of it in its email-based header parser)
against 73 us with this parser on the same keep-alive socket, and requests
was slower still.  It speaks only what the plugin needs: one request at a
time, Content-Length or chunked replies, bodies read straight into the
caller's buffer.

Every request has a deadline: ``send()`` starts it (``budget`` seconds) and
each later blocking socket call waits at most for what is left, so a server
that trickles bytes cannot stretch a request past its budget.
"""

from __future__ import annotations

import socket
import ssl
import time

from multihttp.errors import ServerFault

_MAX_LINE = 65536
# settimeout() is an ioctl that CPython runs without the GIL: with other threads busy
# (readahead, decompression) each call is a GIL hand-off, several per request (every
# header line, every recv).  The timeout is set again only once this much time has
# passed since it was last set for the same deadline, so a blocking call ends at most
# ARM_SLACK seconds past the request's deadline.
ARM_SLACK = 0.005
_MAX_HEADERS = 100


class ConnectionClosed(ServerFault):
    """The server closed the connection before a reply started."""


class Response:
    __slots__ = ("status", "reason", "headers", "length", "chunked", "will_close")

    def __init__(self, status: int, reason: str, headers: dict[str, str],
                 length: int | None, chunked: bool, will_close: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers            # lower-case names
        self.length = length              # body bytes still to read; None: until close
        self.chunked = chunked
        self.will_close = will_close


class Connection:
    """One keep-alive connection; not thread-safe (the pool hands it to one thread)."""

    def __init__(self, sock: socket.socket, host: str, budget: float) -> None:
        self.sock = sock
        self.host = host
        self.budget = budget                 # seconds per request
        self._deadline = time.monotonic() + budget
        self._armed_for: float | None = None    # the deadline the socket timeout serves
        self._armed_at = 0.0
        # Wall-clock Write-Deadline of a write sent and not yet answered (request.py):
        # until the reply comes, the server may still apply it up to that time.
        self.write_deadline: float | None = None
        # The last reply said the server closes the connection: never pool it again.
        self.will_close = False
        self.rfile = sock.makefile("rb", buffering=65536)

    @classmethod
    def open(cls, host: str, port: int, connect_timeout: float, budget: float,
             ctx: ssl.SSLContext | None = None) -> Connection:
        """Connect (and handshake) within ``connect_timeout``."""
        deadline = time.monotonic() + connect_timeout
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            # Small requests and replies must not wait for Nagle/delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx is not None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock = ctx.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        hosthdr = f"[{host}]" if ":" in host else host
        return cls(sock, f"{hosthdr}:{port}", budget)

    def _arm(self) -> None:
        """Let the next blocking socket call wait only until the deadline (or ARM_SLACK
        past it: see ARM_SLACK)."""
        now = time.monotonic()
        left = self._deadline - now
        if left <= 0:
            raise TimeoutError("request timed out")
        if self._armed_for == self._deadline and now - self._armed_at < ARM_SLACK:
            return
        self.sock.settimeout(left)
        self._armed_for = self._deadline
        self._armed_at = now

    def remaining(self) -> float:
        """Seconds left of the current request's deadline (0 once it has passed)."""
        return max(0.0, self._deadline - time.monotonic())

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            self.sock.close()

    def send(self, method: str, target: str, headers: dict[str, str],
             body: bytes | memoryview | None = None) -> None:
        """Send one request: never chunked, never Expect: 100-continue.

        Starts the request's deadline."""
        self._deadline = time.monotonic() + self.budget
        self._arm()     # sendall: the timeout bounds the whole call
        head = "".join([f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\n"] +
                       [f"{k}: {v}\r\n" for k, v in headers.items()] + ["\r\n"])
        data = head.encode("latin-1")
        if body is None or not len(body):
            self.sock.sendall(data)
        elif len(body) <= 65536:
            self.sock.sendall(data + bytes(body))    # one segment for small writes
        else:
            self.sock.sendall(data)
            self.sock.sendall(body)

    def _line(self) -> bytes:
        self._arm()
        line = self.rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise ServerFault("reply header line too long")
        return line

    def response(self, method: str) -> Response:
        """Read a status line and headers (skipping 1xx interim replies)."""
        while True:
            line = self._line()
            if not line:
                raise ConnectionClosed("connection closed by the server")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or \
                    not parts[1].isdigit() or len(parts[1]) != 3:
                raise ServerFault(f"malformed status line {line[:80]!r}")
            version, status = parts[0], int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS + 1):
                h = self._line()
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise ConnectionClosed("connection closed inside reply headers")
                name, sep, value = h.decode("latin-1").partition(":")
                if not sep:
                    raise ServerFault(f"malformed header line {h[:80]!r}")
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            else:
                raise ServerFault("too many reply headers")
            if 100 <= status < 200:
                continue
            break
        conn_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        will_close = "close" in conn_tokens or (version == "HTTP/1.0" and
                                                "keep-alive" not in conn_tokens)
        chunked = False
        length: int | None
        if method == "HEAD" or status in (204, 304):
            length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            chunked, length = True, None
        elif "content-length" in headers:
            cl = headers["content-length"]
            if not cl.isdigit():
                raise ServerFault(f"malformed Content-Length {cl!r}")
            length = int(cl)
        else:
            length, will_close = None, True          # body runs to the close
        self.will_close = will_close
        return Response(status, reason, headers, length, chunked, will_close)

    def read_small(self, resp: Response, limit: int = 65536) -> bytes:
        """Read a whole (short) body so the connection can carry the next request."""
        if resp.chunked:
            out = bytearray()
            while True:
                size_line = self._line().split(b";", 1)[0].strip()
                try:
                    n = int(size_line, 16)
                except ValueError:
                    raise ServerFault(f"malformed chunk size {size_line[:20]!r}") from None
                if n == 0:
                    while self._line() not in (b"\r\n", b"\n", b""):
                        pass                          # trailers
                    return bytes(out)
                if len(out) + n > limit:
                    raise ServerFault("reply body too large")
                out += self._exact(n)
                self._line()
        if resp.length is None:
            self._arm()
            data = self.rfile.read(limit + 1)
            if len(data) > limit:
                raise ServerFault("reply body too large")
            return data
        if resp.length > limit:
            raise ServerFault(f"unexpected {resp.length}-byte reply body")
        return self._exact(resp.length)

    def _exact(self, n: int) -> bytes:
        self._arm()
        data = self.rfile.read(n)
        if len(data) != n:
            raise ServerFault(f"reply body ended after {len(data)} of {n} bytes")
        return data

    def readinto_all(self, mv: memoryview) -> int:
        """Fill ``mv`` from the body; returns the bytes read (fewer only at EOF).

        readinto1 does at most one recv per call, so each recv waits only for
        what is left of the deadline.  Large reads land directly in ``mv``.
        """
        pos, n = 0, len(mv)
        while pos < n:
            self._arm()
            k = self.rfile.readinto1(mv[pos:])
            if not k:
                break
            pos += k
        return pos
