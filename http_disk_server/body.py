"""Reading request bodies: Content-Length or chunked (RFC 9112 section 7.1), bounded.

A body is always read completely before the server writes any of it, so a
client that disconnects or stalls mid-body leaves the device untouched.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import BinaryIO

CHUNK_LINE_MAX = 1024        # a chunk-size line with its extensions
TRAILER_LINE_MAX = 8192
MAX_TRAILER_LINES = 32

_HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class BodyAborted(Exception):
    """The client stopped sending (EOF, timeout, reset): nothing is written."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class BodyError(Exception):
    """The body is malformed or too large. Its framing is lost: the connection must close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_exact(rfile: BinaryIO, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    done = 0
    try:
        while done < n:
            got = rfile.readinto(view[done:])
            if not got:
                raise BodyAborted(f"body ended after {done} of {n} bytes")
            done += got
    except OSError as e:  # includes TimeoutError and ConnectionResetError
        raise BodyAborted(f"reading the body failed after {done} of {n} bytes: {e}",
                          isinstance(e, TimeoutError)) from e
    return buf


def _read_line(rfile: BinaryIO, limit: int, what: str) -> bytes:
    try:
        line = rfile.readline(limit + 1)
    except OSError as e:
        raise BodyAborted(f"reading the {what} failed: {e}", isinstance(e, TimeoutError)) from e
    if not line:
        raise BodyAborted(f"body ended in the {what}")
    if len(line) > limit or not line.endswith(b"\n"):
        raise BodyError(HTTPStatus.BAD_REQUEST, f"{what} longer than {limit} bytes")
    return line


def read_chunked(rfile: BinaryIO, limit: int) -> bytearray:
    """Decode a chunked body of at most ``limit`` bytes; extensions and trailers are skipped."""
    body = bytearray()
    while True:
        line = _read_line(rfile, CHUNK_LINE_MAX, "chunk size line")
        # Chunk extensions (";name=value") carry nothing a disk write uses.
        size_field = line.split(b";", 1)[0].strip()
        if not _HEX_RE.fullmatch(size_field):
            raise BodyError(HTTPStatus.BAD_REQUEST, f"malformed chunk size {size_field[:40]!r}")
        n = int(size_field, 16)
        if n == 0:
            break
        if len(body) + n > limit:
            raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"chunked body exceeds the limit of {limit} bytes")
        body += read_exact(rfile, n)
        try:
            end = rfile.readline(3)
        except OSError as e:
            raise BodyAborted(f"reading a chunk end failed: {e}",
                              isinstance(e, TimeoutError)) from e
        if not end:
            raise BodyAborted("body ended after a chunk")
        if end not in (b"\r\n", b"\n"):
            raise BodyError(HTTPStatus.BAD_REQUEST, "chunk data longer than its declared size")
    # The trailer section ends with an empty line; its fields are read and ignored.
    for _ in range(MAX_TRAILER_LINES + 1):
        if _read_line(rfile, TRAILER_LINE_MAX, "trailer line") in (b"\r\n", b"\n"):
            return body
    raise BodyError(HTTPStatus.BAD_REQUEST, f"more than {MAX_TRAILER_LINES} trailer lines")
