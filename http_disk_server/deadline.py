"""Write deadlines: a write the client has given up on is never applied later.

A client that times out on a PUT retries it on another replica. If this server was
only stalled (SIGSTOP, a frozen VM, a congested link), the request may still sit in
its socket buffer and be applied when it wakes up, over a newer acknowledged write.
The client therefore sends ``Write-Deadline: <seconds since the Unix epoch>`` (the
end of that attempt's budget), and the server checks it at the last moment, right
before the data reaches the device: past the deadline, or with the client already
gone, nothing is written and the answer is 412.

Both checks need the request to carry the header: a client that sends none (an old
one) is served as before, including one that half-closes its side after a complete
request. The comparison uses this host's wall clock against the client's, so the
hosts' clocks must agree within the skew the client allows for (README).
"""

from __future__ import annotations

import math
import re
import select
import socket
import time

HEADER = "Write-Deadline"

_DECIMAL_RE = re.compile(r"\d{1,15}(?:\.\d{1,9})?")


def parse_deadline(value: str | None) -> float | None:
    """The deadline a ``Write-Deadline`` value names, None when absent.

    Raises ValueError with a one-line reason when the value is not a plain decimal
    number of seconds (no sign, exponent, hex, inf or nan).
    """
    if value is None:
        return None
    text = value.strip()
    if not _DECIMAL_RE.fullmatch(text):
        raise ValueError(f"malformed {HEADER} {value[:40]!r} (expected seconds since the "
                         "Unix epoch, e.g. 1764748800.250)")
    deadline = float(text)
    if not math.isfinite(deadline):  # cannot happen with the grammar above; kept explicit
        raise ValueError(f"malformed {HEADER} {value[:40]!r}")
    return deadline


def peer_closed(sock: socket.socket) -> bool:
    """True when the client has closed (FIN or RST) its side of ``sock``.

    Never blocks: poll with a zero timeout first, then peek one byte. The peek goes to
    the TCP socket itself (for TLS too), so it neither consumes nor decrypts anything.
    """
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLRDHUP)
    if not poller.poll(0):
        return False
    try:
        data = socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    return data == b""


class StaleWrite(Exception):
    """The write must not be applied: its deadline passed or its client is gone (412)."""


def check(deadline: float | None, sock: socket.socket, now: float | None = None) -> None:
    """Raise StaleWrite when a write carrying ``deadline`` must not be applied now.

    Call it inside the device-write section, right before the data reaches the device:
    the later the check, the smaller the window for a stale write.
    """
    if deadline is None:
        return
    now = time.time() if now is None else now
    if now > deadline:
        raise StaleWrite(f"write deadline passed {now - deadline:.3f} s ago ({HEADER} "
                         f"{deadline:.3f}); nothing written")
    if peer_closed(sock):
        raise StaleWrite("write deadline: the client closed the connection; nothing written")
