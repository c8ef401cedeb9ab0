"""Admission and bookkeeping of device writes, shared by every resource that writes.

* Buffered bodies: a PUT body is received whole before any of it is written, so at most
  ``max_writers`` large bodies are held at once (memory stays bounded).
* Device writes in progress: shutdown waits for them (a pwrite or fsync cannot be
  interrupted), then refuses new ones before the final flush and close.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import Busy


class WriteGate:
    def __init__(self, max_writers: int) -> None:
        self._slots = threading.BoundedSemaphore(max_writers)
        self._cond = threading.Condition()
        self._writing = 0
        self._closed = False

    @contextmanager
    def buffer_slot(self, needed: bool, timeout: float) -> Iterator[None]:
        """Hold one of the ``max_writers`` body buffers while ``needed``; Busy (503) when
        none frees up within ``timeout``."""
        if not needed:
            yield
            return
        if not self._slots.acquire(timeout=timeout):
            raise Busy("too many writers")
        try:
            yield
        finally:
            self._slots.release()

    @contextmanager
    def device_write(self) -> Iterator[None]:
        """Marks a device write or flush, which shutdown waits for."""
        with self._cond:
            if self._closed:
                # Not OSError(ESHUTDOWN): Python makes that a BrokenPipeError, which would
                # read as "client gone" and leave the request without a reply.
                raise Busy("the server is shutting down")
            self._writing += 1
        try:
            yield
        finally:
            with self._cond:
                self._writing -= 1
                self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Wait for device writes in progress, then refuse new ones (before fsync and close).
        False when a write was still running after ``timeout``."""
        with self._cond:
            done = self._cond.wait_for(lambda: self._writing == 0, timeout)
            self._closed = True
            return done
