"""The interface every storage backend of the server implements.

Resources only talk to this interface, so a regular file, a block device and a read-only
Hexz snapshot stream are served by the same HTTP code (and, next, by an S3 face too).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


class BackendError(OSError):
    """An I/O error from the backend; its one-line str() names the device and offset."""


@dataclass(frozen=True)
class Extent:
    start: int
    length: int
    zero: bool
    hole: bool

    def to_json(self) -> dict:
        return {"start": self.start, "length": self.length, "zero": self.zero, "hole": self.hole}


class Backend(abc.ABC):
    """A fixed-size byte store. Every method is safe to call from several threads."""

    #: human-readable name used in logs and error messages
    name: str = ""
    size: int = 0
    read_only: bool = True
    #: "file", "block" or "snapshot", for GET /info
    kind: str = ""

    def sendfile_fd(self) -> int | None:
        """A file descriptor os.sendfile() may read from, or None."""
        return None

    @abc.abstractmethod
    def readinto(self, buf: memoryview, offset: int) -> None:
        """Fill all of ``buf`` with bytes from ``offset``; raise on a short read."""

    def write(self, buf: memoryview, offset: int) -> None:
        raise PermissionError(f"{self.name} is read-only")

    def zero(self, offset: int, length: int) -> None:
        raise PermissionError(f"{self.name} is read-only")

    def flush(self) -> None:
        """Make every acknowledged write durable (nothing to do for read-only stores)."""
        return None

    def extents(self) -> list[Extent]:
        return [Extent(0, self.size, False, False)]

    def close(self) -> None:
        """Release the device."""
        return None

    def info(self) -> dict:
        return {"name": self.name, "size": self.size, "read_only": self.read_only,
                "type": self.kind}
