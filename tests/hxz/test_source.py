"""The payload-source seam (PLAN contract 1): open_archive takes a path or any object with
name, size, pread, preadv and close, and a locator finds parents that are not local files."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import hxz
from hxz.source import FileSource, PayloadSource


class MemorySource:
    """An archive held in memory: no file descriptor, no readinto fast path."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.size = len(data)
        self._data = data
        self.reads = 0
        self.closed = False

    def pread(self, length: int, offset: int) -> bytes:
        self.reads += 1
        out = self._data[offset:offset + length]
        if len(out) != length:
            raise hxz.BlockError(f"{self.name}: short read at offset {offset}")
        return out

    def preadv(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.pread(n, off) for off, n in ranges]

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("name", ["random", "random_zstd", "multipage", "mixed", "dir"])
def test_archive_from_a_memory_source(cat, name):
    fx = cat[name]
    src = MemorySource(f"mem://{name}", fx.path.read_bytes())
    assert isinstance(src, PayloadSource)
    with hxz.open_archive(src) as a:
        s = a.stream("disk")
        assert s.read(0, s.size) == fx.primary
        assert s.read(s.size // 3, 5000) == fx.primary[s.size // 3:s.size // 3 + 5000]
        assert a.info()["file_size"] == src.size
    assert src.closed and src.reads > 0


def test_locator_supplies_parents(cat):
    fx = cat["thin_of_thin"]
    asked: list[str] = []
    by_name = {p.name: p for p in (cat["thin_shifted"].path, cat["thin_base"].path)}

    def locator(stored: str, child: PayloadSource) -> PayloadSource | None:
        asked.append(stored)
        import os
        path = by_name[os.path.basename(stored)]
        return MemorySource(f"mem://{path.name}", path.read_bytes())

    child = MemorySource("mem://top", fx.path.read_bytes())
    with hxz.open_archive(child, locator=locator) as a:
        assert a.stream().read(0, len(fx.primary)) == fx.primary
        assert a.info()["parent_chain"] == ["mem://thin_shifted.hxz", "mem://thin_base.hxz"]
    assert len(asked) == 2


def test_locator_none_falls_back_to_local_search(cat):
    fx = cat["thin"]
    with hxz.open_archive(fx.path, locator=lambda stored, child: None) as a:
        assert a.stream().read(0, len(fx.primary)) == fx.primary


def test_file_source_short_read_names_file_and_offset(cat):
    src = FileSource(cat["text"].path)
    try:
        assert isinstance(src, PayloadSource)
        with pytest.raises(hxz.BlockError) as ei:
            src.pread(100, src.size - 10)
        assert "text.hxz" in str(ei.value) and str(src.size - 10) in str(ei.value)
        assert src.preadv([(0, 4), (8, 4)]) == [src.pread(4, 0), src.pread(4, 8)]
    finally:
        src.close()


def test_stream_ids_and_aliases(cat):
    with hxz.open_archive(cat["dir"].path) as a:
        for word, sid in (("disk", hxz.StreamId.DISK), ("primary", hxz.StreamId.DISK),
                          ("memory", hxz.StreamId.MEMORY), ("secondary", hxz.StreamId.MEMORY)):
            assert a.stream(word).sid is sid and a.stream(sid).sid is sid
        with pytest.raises(ValueError, match=r"disk or memory \(aliases primary, secondary\)"):
            a.stream("auxiliary")
