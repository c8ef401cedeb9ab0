"""Backends over a regular file or a block device, with positional I/O only.

os.pread/os.pwrite never touch the shared file offset, so any number of handler threads
can use the one descriptor at once (the old server seeked and then read, which mixes up
concurrent requests). ``open()`` looks at what the path is and picks the subclass, as
ovirt-imageio's file backend does: the two differ in how they learn their size, how they
make writes durable and what they know about allocation.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import struct
from collections.abc import Callable

from .backend import Backend, BackendError, Extent

# _IOR(0x12, 114, size_t) on Linux: the device size in bytes as a u64.
BLKGETSIZE64 = 0x80081272

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_ZERO_CHUNK = 1 << 20
# fallocate errors meaning "this mode is not available here", not "the device failed".
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL,
                          errno.ENODEV})

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_fallocate = getattr(_libc, "fallocate64", None) or getattr(_libc, "fallocate", None)
if _fallocate is not None:
    _fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    _fallocate.restype = ctypes.c_int


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """Linux fallocate(2); raises OSError (ENOTSUP/EOPNOTSUPP when not available)."""
    if _fallocate is None:
        raise OSError(errno.EOPNOTSUPP, "fallocate is not available")
    if _fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def block_device_size(fd: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, BLKGETSIZE64, buf, True)
    # The kernel writes a native-endian u64 (the old server unpacked a native long).
    return struct.unpack("=Q", buf)[0]


class DeviceBackend(Backend):
    """What a file and a block device share: an adopted descriptor, pread/pwrite, zeroing."""

    def __init__(self, fd: int, path: str, read_only: bool, size: int) -> None:
        self.fd = fd
        self.name = path
        self.read_only = read_only
        self.size = size
        # Once an fallocate mode fails with "not supported" it is not tried again.
        self._zero_modes = [
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
        ]

    def sendfile_fd(self) -> int | None:
        return self.fd

    def readinto(self, buf: memoryview, offset: int) -> None:
        done = 0
        total = len(buf)
        while done < total:
            try:
                n = os.preadv(self.fd, [buf[done:]], offset + done)
            except OSError as e:
                raise BackendError(e.errno, f"{self.name}: read at offset {offset + done} "
                                   f"failed: {e.strerror}") from e
            if n == 0:
                raise BackendError(errno.EIO, f"{self.name}: unexpected end of device at "
                                   f"offset {offset + done}")
            done += n

    def write(self, buf: memoryview, offset: int) -> None:
        done = 0
        total = len(buf)
        while done < total:
            try:
                n = os.pwrite(self.fd, buf[done:], offset + done)
            except OSError as e:
                raise BackendError(e.errno, f"{self.name}: write at offset {offset + done} "
                                   f"failed: {e.strerror}") from e
            if n == 0:
                raise BackendError(errno.EIO, f"{self.name}: write at offset {offset + done} "
                                   "made no progress")
            done += n

    def zero(self, offset: int, length: int) -> None:
        if length == 0:
            return
        for mode in list(self._zero_modes):
            try:
                fallocate(self.fd, mode, offset, length)
                return
            except OSError as e:
                if e.errno not in _UNSUPPORTED:
                    raise BackendError(e.errno, f"{self.name}: zeroing {length} bytes at "
                                       f"offset {offset} failed: {e.strerror}") from e
                try:
                    self._zero_modes.remove(mode)
                except ValueError:  # another thread removed it first
                    pass
        zeros = memoryview(bytes(min(length, _ZERO_CHUNK)))
        pos, end = offset, offset + length
        while pos < end:
            n = min(len(zeros), end - pos)
            self.write(zeros[:n], pos)
            pos += n

    def flush(self) -> None:
        if self.read_only:
            return
        try:
            self._sync(self.fd)
        except OSError as e:
            raise BackendError(e.errno, f"{self.name}: flush failed: {e.strerror}") from e

    @staticmethod
    def _sync(fd: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class FileBackend(DeviceBackend):
    """A regular file: its size is fixed at open, its holes are known."""

    kind = "file"

    def __init__(self, fd: int, path: str, read_only: bool) -> None:
        super().__init__(fd, path, read_only, os.fstat(fd).st_size)

    @staticmethod
    def _sync(fd: int) -> None:
        # The file's size never changes, so its data (fdatasync) is all there is to sync.
        os.fdatasync(fd)

    def extents(self) -> list[Extent]:
        result: list[Extent] = []
        pos = 0
        while pos < self.size:
            data = min(self._seek(pos, os.SEEK_DATA, "SEEK_DATA"), self.size)
            if data > pos:
                result.append(Extent(pos, data - pos, True, True))
            if data >= self.size:
                break
            hole = min(self._seek(data, os.SEEK_HOLE, "SEEK_HOLE"), self.size)
            result.append(Extent(data, hole - data, False, False))
            pos = hole
        return result

    def _seek(self, pos: int, whence: int, what: str) -> int:
        try:
            return os.lseek(self.fd, pos, whence)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no data (or no hole) after pos: the end
                return self.size
            raise BackendError(e.errno, f"{self.name}: {what} failed: {e.strerror}") from e


class BlockBackend(DeviceBackend):
    """A block device: its size comes from the kernel, fsync flushes the device cache, and
    SEEK_DATA/SEEK_HOLE say nothing about it (one data extent)."""

    kind = "block"

    def __init__(self, fd: int, path: str, read_only: bool) -> None:
        super().__init__(fd, path, read_only, block_device_size(fd))

    @staticmethod
    def _sync(fd: int) -> None:
        # fsync is the documented way to flush a block device's write cache.
        os.fsync(fd)


def open(path: str, read_only: bool, opener: Callable[[str, int], int] = os.open  # noqa: A001
         ) -> DeviceBackend:
    """Open ``path`` and wrap it in the backend its type calls for.

    OSError from the open propagates unchanged (EROFS matters to the DRBD waiter); a path
    that is neither a regular file nor a block device is a BackendError.
    """
    flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC
    fd = opener(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISBLK(mode):
            return BlockBackend(fd, path, read_only)
        if stat.S_ISREG(mode):
            return FileBackend(fd, path, read_only)
        raise BackendError(errno.EINVAL, f"{path}: not a regular file or block device")
    except BaseException:
        os.close(fd)
        raise
