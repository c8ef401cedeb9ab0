"""Sending a byte range of a backend as a response body: sendfile, else pread.

sendfile(2) moves file pages to the socket without copying them through Python; it does
not work under TLS, nor from every device (the fallback is decided per connection, so no
shared state changes at run time). Without sendfile, the first chunk is read before the
status line is sent, so a read error can still be answered with an error status instead
of a cut body.
"""

from __future__ import annotations

import errno
import os
import select
import socket
from typing import BinaryIO

from .backend import Backend

IO_CHUNK = 1 << 20

# sendfile errors meaning "this descriptor cannot be spliced", not "the device failed".
_NO_SPLICE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


class RangeSender:
    """One per connection: streams ranges to it with a reusable buffer."""

    def __init__(self, sock: socket.socket, wfile: BinaryIO, timeout: float,
                 sendfile: bool) -> None:
        self._sock = sock
        self._wfile = wfile
        self._timeout = timeout
        self._sendfile = sendfile
        self._buf: bytearray | None = None

    def prepare(self, backend: Backend, offset: int, length: int) -> memoryview | None:
        """Call before the status line. Returns the first chunk when the range will be sent
        with pread (its read errors can still become an error status); None for sendfile
        or an empty range."""
        if length == 0 or (self._sendfile and backend.sendfile_fd() is not None):
            return None
        return self._read(backend, offset, min(length, IO_CHUNK))

    def send(self, backend: Backend, offset: int, length: int,
             first_chunk: memoryview | None) -> None:
        """Send the range after the headers (with what ``prepare`` returned)."""
        if length == 0:
            return
        fd = backend.sendfile_fd()
        if first_chunk is None and fd is not None and self._send_sendfile(fd, offset, length,
                                                                           backend):
            return
        self._send_pread(backend, offset, length, first_chunk)

    def _read(self, backend: Backend, offset: int, n: int) -> memoryview:
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
                chunk = self._read(backend, offset + done, min(length - done, IO_CHUNK))
            self._wfile.write(chunk)
            done += len(chunk)

    def _send_sendfile(self, fd: int, offset: int, length: int, backend: Backend) -> bool:
        """False when this descriptor cannot be spliced (nothing was sent: fall back)."""
        sockfd = self._sock.fileno()
        done = 0
        while done < length:
            try:
                n = os.sendfile(sockfd, fd, offset + done, length - done)
            except BlockingIOError:
                # The socket has a timeout, hence is non-blocking: wait for room.
                if not _wait_writable(sockfd, self._timeout):
                    raise TimeoutError("client stopped reading") from None
                continue
            except OSError as e:
                if done == 0 and e.errno in _NO_SPLICE:
                    self._sendfile = False   # for the rest of this connection
                    return False
                raise
            if n == 0:
                raise OSError(errno.EIO, f"{backend.name}: unexpected end of device at offset "
                              f"{offset + done}")
            done += n
        return True


def _wait_writable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(timeout * 1000))
