"""Failures of HTTP requests and the errno each one deliberately maps to.

Two kinds:
- ``ServerFault``: this server cannot serve the request now (connection
  refused or reset, timeout, 5xx, a reply that breaks the protocol).  The
  failover layer retries and then moves to another server; if every server
  fails the client gets EIO.
- ``FinalError``: the request itself is refused in a way another replica of
  the same volume would repeat (no space, read-only, bad credentials).  It
  goes straight to the client with its errno.
"""

from __future__ import annotations

import errno


class HttpError(Exception):
    errno: int = errno.EIO


class ServerFault(HttpError):
    """Retryable on the same server, then on another one."""

    errno = errno.EIO


class FinalError(HttpError):
    """Not worth another server: returned to the NBD client as ``self.errno``."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err


def status_error(status: int, reason: str, *, write: bool, server: str) -> HttpError:
    """Map an unexpected HTTP status to the exception (and errno) it stands for."""
    what = f"{server}: HTTP {status} {reason}".strip()
    if status in (413, 507):
        return FinalError(f"{what}: no space", errno.ENOSPC)
    if status == 403:
        # A server started --read-only answers 403 to writes: a read-only device.
        return FinalError(f"{what}: refused", errno.EROFS if write else errno.EPERM)
    if status == 401:
        return FinalError(f"{what}: authentication refused (check user=/password=)",
                          errno.EPERM)
    # 5xx, 404, 416 (the server's disk is smaller than ours), 400 and anything
    # unforeseen: this server is unusable for this request; another may not be.
    return ServerFault(what)
