"""Connection plumbing below HTTP semantics: 100-continue, unread bodies, lingering close.

None of this knows about disks; it keeps a keep-alive connection usable (or closes it
without destroying the reply) around requests whose bodies were refused.
"""

from __future__ import annotations

import re
import socket
import time
from email.message import Message
from typing import BinaryIO

from .body import BodyAborted, read_exact

# Unread bodies up to this size are read and dropped after a refusal, so the keep-alive
# connection stays usable; larger ones close the connection.
MAX_DRAIN = 1 << 20
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 << 20

_DIGITS_RE = re.compile(r"\d{1,19}")


def expects_continue(headers: Message, request_version: str) -> bool:
    return (headers.get("Expect", "").lower() == "100-continue"
            and request_version >= "HTTP/1.1")


def send_continue(wfile: BinaryIO) -> None:
    """The interim reply that lets a client waiting on ``Expect: 100-continue`` send its
    body. Sent only once the request has been accepted, so a refused PUT never makes the
    client send its body."""
    wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    wfile.flush()


def drain_body(rfile: BinaryIO, headers: Message, request_version: str) -> bool:
    """Read and drop the unread body of a refused request. True when the connection is
    still usable; False when it must close (too large, chunked, or a client that waits for
    100 Continue and will never send the body)."""
    te = headers.get("Transfer-Encoding")
    cl = (headers.get("Content-Length") or "0").strip()
    if te is None and cl == "0":
        return True
    if (te is None and not expects_continue(headers, request_version)
            and _DIGITS_RE.fullmatch(cl) and int(cl) <= MAX_DRAIN):
        try:
            read_exact(rfile, int(cl))
            return True
        except (BodyAborted, OSError):
            pass
    return False


def lingering_close(sock: socket.socket) -> None:
    """Half-close and drop what the client still sends, for a moment.

    Closing a socket with unread data sends a RST, which can destroy the reply before the
    client reads it (RFC 9112 section 9.6).
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        dropped = 0
        while dropped < LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            dropped += len(data)
    except OSError:
        pass


def abort(sock: socket.socket) -> None:
    """Unblock reads and writes on ``sock`` from another thread (shutdown)."""
    try:
        # The TCP socket itself, also under TLS: no TLS record is needed to unblock.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass
