"""Stream and member views: byte ranges of an archive's streams, checked, for readers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .manifest import Member
from .streamid import StreamId

if TYPE_CHECKING:
    from .archive import Archive

# Readahead only pays when most work is GIL-free codec/CRC time: large average blocks.
READAHEAD_MIN_AVG_BLOCK = 64 << 10


class Stream:
    """One logical stream of an archive (disk or memory)."""

    def __init__(self, archive: Archive, sid: StreamId, base: int = 0,
                 size: int | None = None) -> None:
        self.archive = archive
        self.sid = sid
        self.name = sid.label
        self._base = base
        self.size = archive.stream_size(sid) if size is None else size

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"range [{offset}, {offset + length}) is outside the "
                             f"{self.size}-byte {self.name} stream")

    def readinto(self, buf: Any, offset: int) -> None:
        """Fill ``buf`` with bytes [offset, offset+len(buf)). Raises BlockError on corruption."""
        mv = memoryview(buf)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        self._check(offset, len(mv))
        if len(mv):
            self.archive.readinto(self.sid, mv, self._base + offset, self._base + self.size)

    def read(self, offset: int, length: int) -> bytes:
        buf = bytearray(length)
        self.readinto(buf, offset)
        return bytes(buf)

    def prefetch(self, offset: int, length: int) -> None:
        """Decompress [offset, offset+length) into the block cache (an NBD cache request);
        a block that cannot be produced raises BlockError."""
        self._check(offset, length)
        if length:
            self.archive.prefetch(self.sid, self._base + offset, length)

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(start, length, is_zero) runs from ``offset`` covering part or all of the range."""
        self._check(offset, length)
        if length == 0:
            return []
        base = self._base
        return [(a - base, n, z)
                for a, n, z in self.archive.extents(self.sid, base + offset, length)]

    def enable_readahead(self, window: int = 8 << 20, chunk: int = 2 << 20,
                         min_avg_block: int = READAHEAD_MIN_AVG_BLOCK, threads: int = 1
                         ) -> None:
        """Start the archive's readahead worker (call after any fork, e.g. nbdkit's
        after_fork): sequential readers get up to ``window`` bytes decompressed ahead, in
        jobs of ``chunk`` bytes.  Keep ``window`` well below the block cache size."""
        st = self.archive.pages.index(self.sid)
        if st.block_count and st.size // st.block_count < min_avg_block:
            # Measured: with small blocks the work is GIL-bound Python, a second thread
            # only adds contention (bench/RESULTS.md).
            return
        self.archive.enable_readahead(window, chunk, threads)


class MemberView(Stream):
    """The bytes of one directory-archive member, as a Stream-like object."""

    def __init__(self, archive: Archive, sid: StreamId, member: Member) -> None:
        super().__init__(archive, sid, base=member.offset, size=member.size)
        self.member = member
        self.name = member.path
