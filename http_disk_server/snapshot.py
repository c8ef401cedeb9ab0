"""Read-only backend over one stream of a Hexz snapshot (.hxz), via the hxz reader."""

from __future__ import annotations

import errno

import hxz

from .backend import Backend, BackendError, Extent

VERIFY_MODES = hxz.VERIFY_MODES

class SnapshotBackend(Backend):
    read_only = True
    kind = "snapshot"

    def __init__(self, stream: hxz.Stream, name: str) -> None:
        self._stream = stream
        self.name = name
        self.size = stream.size

    def readinto(self, buf: memoryview, offset: int) -> None:
        try:
            self._stream.readinto(buf, offset)
        except hxz.HxzError as e:
            # Corrupt or missing block data: an I/O error for this request only.
            raise BackendError(errno.EIO, str(e)) from e

    def extents(self) -> list[Extent]:
        result: list[Extent] = []
        pos = 0
        while pos < self.size:
            start_pos = pos
            try:
                runs = self._stream.extents(pos, self.size - pos)
            except hxz.HxzError as e:
                raise BackendError(errno.EIO, str(e)) from e
            for start, length, is_zero in runs:
                length = min(length, self.size - start)
                if length <= 0:
                    continue
                # A zero run stores no data, hence is a hole as well.
                if result and result[-1].zero == is_zero and \
                        result[-1].start + result[-1].length == start:
                    last = result.pop()
                    result.append(Extent(last.start, last.length + length, is_zero, is_zero))
                else:
                    result.append(Extent(start, length, is_zero, is_zero))
                pos = max(pos, start + length)
            if not runs or pos <= start_pos:
                raise BackendError(errno.EIO, f"{self.name}: extents made no progress at "
                                   f"offset {start_pos}")
        return result


def open_snapshot(path: str, verify: str = "crc"
                  ) -> tuple[dict[str, Backend], dict, hxz.Archive]:
    """The streams of a snapshot by hexz serve's names ("disk", and "memory" when the
    archive has one), its metadata for GET /info, and the archive (to close at the end).

    ``verify`` is hxz's: "crc" checks the CRC-32 of the stored bytes,
    "hash" also the BLAKE3 hash of every decompressed block against its index record.
    """
    archive = hxz.open_archive(path, verify=verify)
    try:
        streams: dict[str, Backend] = {"disk": SnapshotBackend(archive.stream("disk"),
                                                               f"{path}:disk")}
        memory = archive.stream("memory")
        if memory.size > 0:
            streams["memory"] = SnapshotBackend(memory, f"{path}:memory")
        info = dict(archive.info(), verify=verify)
    except BaseException:
        archive.close()
        raise
    return streams, {"snapshot": info}, archive
