"""In-process tests of the hxz reader (hxz.open_archive), without nbdkit.

Faster than the NBD tests and with better failure messages; the same archives and the same
expectations (the packed inputs).
"""

from __future__ import annotations

import json
import random
import threading
import zlib

import pytest

import hxz
from tests.support.archives import catalog, checks, spec

ALL = catalog.ALL


@pytest.fixture(scope="module")
def opened(cat):
    archives: dict[str, hxz.Archive] = {}

    def _open(name: str) -> hxz.Archive:
        if name not in archives:
            archives[name] = hxz.open_archive(str(cat[name].path))
        return archives[name]

    yield _open
    for a in archives.values():
        a.close()


@pytest.mark.parametrize("name", ALL)
def test_whole_stream_matches_input(cat, opened, name):
    fx = cat[name]
    a = opened(name)
    s = a.stream("disk")
    assert s.size == len(fx.primary)
    got = s.read(0, s.size)
    diff = checks.first_diff(got, fx.primary)
    assert got == fx.primary, f"{name}: first difference at {diff}"
    assert a.compression == fx.compression


@pytest.mark.parametrize("name", catalog.SUBSTANTIAL + ["edge_65537", "edge_1m_plus"])
def test_edge_reads(cat, opened, name):
    fx = cat[name]
    s = opened(name).stream("primary")
    seed = zlib.crc32(name.encode())
    for off, ln in checks.edge_reads(fx.layout(), len(fx.primary), seed=seed):
        got = s.read(off, ln)
        assert got == fx.primary[off:off + ln], f"{name}: read({off}, {ln}) differs"


def test_readinto_memoryview_and_bounds(cat, opened):
    fx = cat["random"]
    s = opened("random").stream("disk")
    buf = bytearray(10_000)
    s.readinto(memoryview(buf)[100:9100], 65_000)
    assert buf[100:9100] == fx.primary[65_000:74_000]
    assert buf[:100] == bytes(100) and buf[9100:] == bytes(900)
    assert s.read(s.size, 0) == b""
    with pytest.raises(ValueError):
        s.read(s.size - 1, 2)
    with pytest.raises(ValueError):
        s.read(s.size + 1, 0)
    with pytest.raises(ValueError):
        s.read(-1, 1)


@pytest.mark.parametrize("name", catalog.DIRS)
def test_directory_members_and_streams(cat, opened, name):
    fx = cat[name]
    a = opened(name)
    assert a.stream("memory").size == len(fx.secondary)
    assert a.stream("secondary").read(0, len(fx.secondary)) == fx.secondary
    members = {m.path: m for m in a.members()}
    assert set(members) == set(fx.members)
    manifest = {e["path"]: e for e in fx.layout().manifest()}
    for path, data in fx.members.items():
        m = members[path]
        assert m.size == len(data)
        assert m.offset == manifest[path]["offset"]
        assert m.mode == manifest[path]["mode"]
        # root-level "memory" is the secondary stream; "sub/memory" is an ordinary file
        assert m.stream == ("memory" if path == "memory" else "disk"), path
        view = a.member(path)
        assert view.size == len(data)
        assert view.read(0, len(data)) == data, path
        if len(data) > 2:
            assert view.read(1, len(data) - 2) == data[1:-1]
    with pytest.raises(KeyError):
        a.member("no/such/file")


def test_single_file_archive_has_no_members(opened):
    assert opened("random").members() == []


@pytest.mark.parametrize("name", ["thin", "thin_of_thin", "dir", "multipage"])
def test_info_is_json(cat, opened, name):
    info = opened(name).info()
    text = json.dumps(info)
    assert str(cat[name].path) in text or cat[name].path.name in text
    if name == "thin_of_thin":
        # the parent chain names both ancestors
        assert "thin_shifted.hxz" in text and "thin_base.hxz" in text
        assert len(opened(name).parents) == 1


@pytest.mark.parametrize("name", ["mixed", "mixed_zstd", "zeros", "zeros_zstd", "dir"])
def test_extents_sound_and_complete(cat, opened, name):
    fx = cat[name]
    s = opened(name).stream("disk")
    layout = fx.layout()
    must = checks.zero_records(layout, fx.primary)
    pos, size = 0, s.size
    ext: list[tuple[int, int, bool]] = []
    while pos < size:
        part = s.extents(pos, size - pos)
        assert part, f"no extents at {pos}"
        ext += part
        pos = part[-1][0] + part[-1][1]
    checks.check_extents(ext, fx.primary, 0, size, must)
    if name.startswith("zeros"):
        assert all(z for _, _, z in ext), "an all-zero image must be reported zero throughout"


def test_concurrent_reads_share_caches(cat):
    """Several threads on one Archive with a cache much smaller than the working set."""
    fx = cat["multipage"]
    a = hxz.open_archive(str(fx.path), cache_size=256 << 10)
    s = a.stream("disk")
    errors: list[str] = []

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(150):
            off = rnd.randrange(s.size)
            ln = min(rnd.choice([1, 4096, 65536, 300_000]), s.size - off)
            if s.read(off, ln) != fx.primary[off:off + ln]:
                errors.append(f"read({off}, {ln})")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "reader thread hung"
    a.close()
    assert not errors, errors[:5]


def test_parent_dirs_argument(cat, tmp_path):
    """A thin archive whose parent path does not resolve opens with parent_dirs=."""
    import shutil

    import hexz

    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(cat["thin_base"].path, work / "base.hxz")
    src = cat["thin_shifted"].input_path
    kids = tmp_path / "kids"
    kids.mkdir()
    # relative base path, relative to the packer's cwd (work/), not to the child's directory
    cwd = _chdir(work)
    try:
        hexz.pack(str(src), str(kids / "child.hxz"), base="base.hxz", compression="zstd")
    finally:
        _chdir(cwd)
    with pytest.raises(hxz.FormatError) as ei:
        hxz.open_archive(str(kids / "child.hxz"))
    assert "base.hxz" in str(ei.value) and "\n" not in str(ei.value)
    with hxz.open_archive(str(kids / "child.hxz"), parent_dirs=(str(work),)) as a:
        assert a.stream("disk").read(0, len(cat["thin_shifted"].primary)) == \
            cat["thin_shifted"].primary


def _chdir(path):
    import os

    old = os.getcwd()
    os.chdir(path)
    return old


def test_caches_are_bounded(cat):
    """Memory retained after reading a whole archive in 4 KiB steps stays within cache_size
    plus the decoded index pages, measured exactly with tracemalloc (no allocator noise)."""
    import tracemalloc

    fx = cat["multipage"]
    cache = 1 << 20
    tracemalloc.start()
    try:
        a = hxz.open_archive(str(fx.path), cache_size=cache)
        s = a.stream("disk")
        base = tracemalloc.get_traced_memory()[0]
        for off in range(0, s.size, 4096):
            s.read(off, min(4096, s.size - off))
        retained = tracemalloc.get_traced_memory()[0] - base
        a.close()
    finally:
        tracemalloc.stop()
    # ~8 MB of distinct decompressed blocks went through a 1 MiB cache; 3 pages of index
    assert retained < cache + (3 << 20), f"{retained} bytes retained with cache_size={cache}"


@pytest.mark.parametrize("name", ["multipage", "thin_of_multipage", "thin_of_thin", "dir"])
def test_open_is_lazy(cat, name):
    """Opening reads the header, the master index and the last index page of each stream
    (to check the stream size, docs/hxz-format.md §4): no other page is decoded (a page is up
    to 213 kB on disk) until a read needs it, parents included."""
    import tracemalloc

    tracemalloc.start()
    try:
        a = hxz.open_archive(str(cat[name].path))
        opened = tracemalloc.get_traced_memory()[0]
        s = a.stream("disk")
        s.read(s.size // 2, 1)
        after_read = tracemalloc.get_traced_memory()[0]
        a.close()
    finally:
        tracemalloc.stop()
    last_pages = 0
    for path in [str(cat[name].path), *a.info()["parent_chain"]]:
        for pages in spec.parse(path).pages:
            last_pages += pages[-1].length if pages else 0
    # a decoded page holds its raw bytes plus about 36 bytes of columns per 52-byte record
    assert opened < (64 << 10) + 2 * last_pages, f"{opened} bytes allocated by open_archive"
    assert after_read > opened  # the measurement does see page loads
