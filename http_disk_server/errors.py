"""What can go wrong in a request, and the one mapping from failures to HTTP statuses.

Resources and the layers under them raise either an ``HTTPError`` (a status chosen by the
protocol logic, e.g. 403 on a read-only server) or a domain error (a device error, a stale
write, a body the client stopped sending, storage not open yet). ``failure_for`` turns any
of them into the one reply the client gets; the Router is its only caller, so a second
router (the S3 face) maps the same failures the same way and only formats them its own way.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from http import HTTPStatus

from nbdsuite.httprange import MalformedRange, UnsatisfiableRange, format_unsatisfied

from .body import BodyAborted, BodyError
from .deadline import StaleWrite

# A socket error on the client connection: there is nobody left to answer.
CONNECTION_LOST = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class HTTPError(Exception):
    """Ends a request with ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


class NotReady(Exception):
    """The storage is not open yet (DRBD: another host is Primary); retry later."""


class Busy(Exception):
    """Too many requests hold a resource this one needs; retry later."""


@dataclass(frozen=True)
class Failure:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False     # the request's framing is lost: the connection cannot be reused
    linger: bool = False    # ... and the client may still be sending: drain before closing
    loud: bool = False      # worth a warning line even without -v
    internal: bool = False  # a bug: log the traceback


def _retry_later(reason: str) -> Failure:
    return Failure(HTTPStatus.SERVICE_UNAVAILABLE, reason, {"Retry-After": "1"})


def _status_for_errno(err: int | None) -> int:
    if err == errno.ENOSPC:
        return HTTPStatus.INSUFFICIENT_STORAGE
    if err in (errno.EROFS, errno.EPERM, errno.EACCES):
        return HTTPStatus.FORBIDDEN
    return HTTPStatus.INTERNAL_SERVER_ERROR


def failure_for(exc: BaseException) -> Failure | None:
    """The reply for ``exc``; None when the client connection is gone (nothing to send)."""
    if isinstance(exc, HTTPError):
        return Failure(exc.status, exc.reason, exc.headers, loud=exc.status >= 500)
    if isinstance(exc, NotReady):
        # Routine while DRBD waits, and may come every second: not logged.
        return _retry_later(str(exc))
    if isinstance(exc, Busy):
        return _retry_later(str(exc))
    if isinstance(exc, StaleWrite):
        # Always one line: it means a replica was stalled and a client moved on.
        return Failure(HTTPStatus.PRECONDITION_FAILED, str(exc), loud=True)
    if isinstance(exc, MalformedRange):
        return Failure(HTTPStatus.BAD_REQUEST, str(exc))
    if isinstance(exc, UnsatisfiableRange):
        size = getattr(exc, "size", None)
        headers = {} if size is None else {"Content-Range": format_unsatisfied(size)}
        return Failure(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, str(exc), headers)
    if isinstance(exc, BodyAborted):
        # A stalled body is the client's delay (408); a body cut short, its error (400).
        status = HTTPStatus.REQUEST_TIMEOUT if exc.timed_out else HTTPStatus.BAD_REQUEST
        return Failure(status, f"{exc}; nothing written", close=True)
    if isinstance(exc, BodyError):
        return Failure(exc.status, exc.reason, close=True,
                       linger=exc.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, CONNECTION_LOST):
        return None
    if isinstance(exc, OSError):
        # Device errors: the reason names the device and offset (BackendError).
        status = _status_for_errno(exc.errno)
        return Failure(status, str(exc), loud=status >= 500)
    return Failure(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", close=True, loud=True,
                   internal=True)
