"""A minimal HTTP/1.1 client on raw sockets, for requests `requests` refuses to send."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Conn:
    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"connection closed before a full response: {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def read_response(self, head_only: bool = False) -> Response:
        """The next final response (interim 1xx responses are skipped)."""
        while True:
            status, headers = self.read_head()
            if status >= 200:
                break
        n = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("connection closed in the response body")
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(status, headers, body)

    def is_closed(self, timeout: float = 3.0) -> bool:
        """True when the server closes the connection within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def request(port: int, data: bytes, timeout: float = 5.0) -> Response:
    c = Conn(port, timeout)
    try:
        c.send(data)
        return c.read_response()
    finally:
        c.close()


def chunked(*pieces: bytes, ext: bool = False, trailers: bytes = b"") -> bytes:
    out = b""
    for i, p in enumerate(pieces):
        size = f"{len(p):x}".encode()
        if ext:
            size += f';chunk-no={i};name="x y"'.encode()
        out += size + b"\r\n" + p + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


def put(offset: int | None, data: bytes, *headers: str, path: str = "/",
        chunked_body: bool = False) -> bytes:
    """A raw PUT of ``data`` at ``offset`` (no Content-Range when ``offset`` is None);
    ``headers`` are extra "Name: value" lines, sent as given (repeats included)."""
    lines = [f"PUT {path} HTTP/1.1", "Host: x"]
    if offset is not None:
        lines.append(f"Content-Range: bytes {offset}-{offset + max(len(data), 1) - 1}/*")
    lines.append("Transfer-Encoding: chunked" if chunked_body else f"Content-Length: {len(data)}")
    lines += headers
    body = chunked(data) if chunked_body else data
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def patch(obj: dict, *headers: str, path: str = "/") -> bytes:
    """A raw PATCH with a JSON body; ``headers`` as for put()."""
    body = json.dumps(obj).encode()
    lines = [f"PATCH {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def put_head(offset: int, length: int | None, extra: str = "", path: str = "/") -> bytes:
    """The head of a PUT at ``offset``: Content-Length ``length``, or chunked for None;
    ``extra`` is more header lines, each ending in CRLF."""
    h = f"PUT {path} HTTP/1.1\r\nHost: x\r\n"
    if length is not None:
        h += f"Content-Range: bytes {offset}-{offset + max(length, 1) - 1}/*\r\n"
        h += f"Content-Length: {length}\r\n"
    else:
        h += f"Content-Range: bytes {offset}-{offset}/*\r\nTransfer-Encoding: chunked\r\n"
    return (h + extra + "\r\n").encode()
