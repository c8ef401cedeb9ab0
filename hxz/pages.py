"""An archive's index pages: loading them through the shared page cache, and the one walk
over the records that a logical range needs (used by reads, prefetch and extents)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from .cache import LRUCache
from .errors import BlockError
from .index import Page, StreamIndex, decode_page
from .source import PayloadSource
from .streamid import StreamId


class PageTable:
    """The pages of both streams of one archive (``token`` keys its cache entries)."""

    def __init__(self, source: PayloadSource, streams: tuple[StreamIndex, StreamIndex],
                 index_offset: int, cache: LRUCache, token: int) -> None:
        self.source = source
        self.streams = streams
        self.index_offset = index_offset
        self._cache = cache
        self._token = token

    def index(self, sid: StreamId) -> StreamIndex:
        return self.streams[sid]

    def decode(self, sid: StreamId, number: int) -> Page:
        """Read and validate page ``number`` of a stream, bypassing the cache."""
        st = self.streams[sid]
        entry = st.pages[number]
        try:
            raw = self.source.pread(entry.length, entry.offset)
        except BlockError as e:
            raise BlockError(f"{sid.label} page {number}: {e}") from None
        return decode_page(raw, st, number, self.source.name, self.index_offset)

    def page(self, sid: StreamId, number: int) -> Page:
        """Page ``number`` of a stream, loaded (and checked) once while it stays cached."""
        key = (self._token, sid, number)
        page = self._cache.get(key)
        if page is None:
            page = self._cache.get_or_load(key, lambda: self.decode(sid, number))
        return page

    def page_end(self, sid: StreamId, pos: int) -> int:
        """Logical end of the page holding ``pos`` (from the master index alone)."""
        st = self.streams[sid]
        pn = bisect_right(st.page_starts, pos)
        return st.pages[pn].start_logical if pn < len(st.pages) else st.size

    def walk(self, sid: StreamId, start: int, end: int) -> Iterator[tuple[Page, int, int]]:
        """(page, i, j) for each page overlapping [start, end): its records i..j-1 are
        the ones holding bytes of the range."""
        st = self.streams[sid]
        page_starts = st.page_starts
        pos = start
        while pos < end:
            page = self.page(sid, bisect_right(page_starts, pos) - 1)
            i = page.find(pos)
            j = bisect_left(page.starts, end, i, page.n)
            yield page, i, j
            pos = page.starts[j]
