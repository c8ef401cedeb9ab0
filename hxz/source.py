"""Where payload bytes come from: the PayloadSource interface and its local-file form.

The reader never touches a file descriptor outside this module: opening, the header, the
master index, index pages and block payloads are all read through a PayloadSource, so a
network source (HTTP ranges, S3) plugs in by implementing the same four members.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .errors import BlockError, FormatError


@runtime_checkable
class PayloadSource(Protocol):
    """Random access to the bytes of one archive object."""

    name: str      # path or URL (credentials stripped): every message names it
    size: int      # total bytes of the object

    def pread(self, length: int, offset: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; raises FormatError or BlockError naming
        ``name`` and the offset otherwise (a truncated object, an I/O error)."""
        ...

    def preadv(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Batch form for coalesced reads: [(offset, length), ...] -> buffers in order."""
        ...

    def close(self) -> None:
        ...


class FileSource:
    """A local archive: a regular file or a block device, read with ``os.pread``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.name = os.fspath(path)
        try:
            # O_NONBLOCK: opening a FIFO by mistake must fail fast, not wait for a writer.
            self._fd = os.open(self.name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            raise FormatError(f"{self.name}: cannot open: {e.strerror}") from None
        try:
            st = os.fstat(self._fd)
            if stat.S_ISREG(st.st_mode):
                self.size = st.st_size
            elif stat.S_ISBLK(st.st_mode):
                self.size = os.lseek(self._fd, 0, os.SEEK_END)
            else:
                raise FormatError(f"{self.name}: not a regular file or block device")
        except BaseException:
            self.close()
            raise

    def pread(self, length: int, offset: int) -> bytes:
        data = self._pread(length, offset)
        if len(data) != length:
            raise BlockError(f"{self.name}: short read at offset {offset}: {len(data)} of "
                             f"{length} bytes (truncated file?)")
        return data

    def preadv(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.pread(length, offset) for offset, length in ranges]

    def pread_upto(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes (fewer at the end of the file): for callers that name
        the short part themselves."""
        return self._pread(length, offset)

    def readinto(self, buf: Any, offset: int) -> int:
        """Fill a writable buffer from ``offset``; returns the count read (fewer at EOF).
        Lets the block store reuse its read buffers instead of allocating per read."""
        return os.preadv(self._fd, [buf], offset)

    def _pread(self, length: int, offset: int) -> bytes:
        try:
            return os.pread(self._fd, length, offset)
        except OSError as e:
            raise BlockError(f"{self.name}: read of {length} bytes at offset {offset} "
                             f"failed: {e.strerror}") from None

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<hxz.FileSource {self.name!r}>"
