"""Backend over a regular file or a block device, with positional I/O only.

os.pread/os.pwrite never touch the shared file offset, so any number of handler
threads can use the one descriptor at once (the old server seeked and then read,
which mixes up concurrent requests).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import struct

from .backend import Backend, BackendError, Extent

# _IOR(0x12, 114, size_t) on Linux: the device size in bytes as a u64.
BLKGETSIZE64 = 0x80081272

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_ZERO_CHUNK = 1 << 20

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


class FileBackend(Backend):
    """A regular file or block device opened by the caller (fd is adopted)."""

    can_flush = True
    can_zero = True

    def __init__(self, fd: int, path: str, read_only: bool) -> None:
        self.fd = fd
        self.name = path
        self.read_only = read_only
        st = os.fstat(fd)
        self.is_block = stat.S_ISBLK(st.st_mode)
        if self.is_block:
            self.size = block_device_size(fd)
        elif stat.S_ISREG(st.st_mode):
            self.size = st.st_size
        else:
            raise BackendError(errno.EINVAL, f"{path}: not a regular file or block device")
        self.can_zero = not read_only
        self.can_flush = not read_only
        # SEEK_DATA/SEEK_HOLE only describe allocation on regular files.
        self.can_extents = not self.is_block
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
                if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL,
                               errno.ENODEV):
                    try:
                        self._zero_modes.remove(mode)
                    except ValueError:  # another thread removed it first
                        pass
                    continue
                raise BackendError(e.errno, f"{self.name}: zeroing {length} bytes at offset "
                                   f"{offset} failed: {e.strerror}") from e
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
            # fdatasync is enough for a file whose size never changes; for a
            # block device fsync is the documented way to flush the device cache.
            if self.is_block:
                os.fsync(self.fd)
            else:
                os.fdatasync(self.fd)
        except OSError as e:
            raise BackendError(e.errno, f"{self.name}: flush failed: {e.strerror}") from e

    def extents(self) -> list[Extent]:
        if self.is_block:
            return [Extent(0, self.size, False, False)]
        result: list[Extent] = []
        pos = 0
        while pos < self.size:
            try:
                data = os.lseek(self.fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: no data after pos
                    raise BackendError(e.errno, f"{self.name}: SEEK_DATA failed: "
                                       f"{e.strerror}") from e
                data = self.size
            data = min(data, self.size)
            if data > pos:
                result.append(Extent(pos, data - pos, True, True))
            if data >= self.size:
                break
            try:
                hole = os.lseek(self.fd, data, os.SEEK_HOLE)
            except OSError as e:
                raise BackendError(e.errno, f"{self.name}: SEEK_HOLE failed: "
                                   f"{e.strerror}") from e
            hole = min(hole, self.size)
            result.append(Extent(data, hole - data, False, False))
            pos = hole
        return result

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def info(self) -> dict:
        d = super().info()
        d["type"] = "block" if self.is_block else "file"
        return d


def open_device(path: str, read_only: bool, opener=os.open) -> FileBackend:
    """Open ``path`` and wrap it; OSError from the open propagates (EROFS matters to DRBD)."""
    flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC
    fd = opener(path, flags)
    try:
        return FileBackend(fd, path, read_only)
    except BaseException:
        os.close(fd)
        raise
