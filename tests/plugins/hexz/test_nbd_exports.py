"""Directory archives over NBD: export listing, members by export name, stream= selection."""

from __future__ import annotations

import errno
import json

import nbd
import pytest

from tests.support.archives import catalog
from tests.support.nbd import list_exports, plugin_argv, run_tool


def _list(uri: str) -> list[dict]:
    r = run_tool(["nbdinfo", "--list", "--json", uri], timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["exports"]


@pytest.mark.parametrize("name", catalog.DIRS)
def test_list_exports_names_every_member(cat, serve, name):
    fx = cat[name]
    exports = _list(serve(name).uri)
    names = [e["export-name"] for e in exports]
    assert set(fx.members) <= set(names), set(fx.members) - set(names)
    assert len(names) == len(set(names)), "duplicate export names"
    by_name = {e["export-name"]: e for e in exports}
    for path, data in fx.members.items():
        assert by_name[path]["export-size"] == len(data), path


@pytest.mark.parametrize("name", catalog.DIRS)
def test_member_by_export_name(cat, serve, name):
    fx = cat[name]
    srv = serve(name)
    for path, data in fx.members.items():
        with srv.client(export=path) as c:
            assert c.size == len(data), path
            if data:
                assert c.pread(len(data), 0) == data, path
                assert c.pread(1, len(data) - 1) == data[-1:], path


def test_member_with_nbdcopy_uri(cat, serve, tmp_path):
    fx = cat["dir"]
    srv = serve("dir")
    for path in ("sub/deeper/c.dat", "memory", "sub/memory"):
        out = tmp_path / path.replace("/", "_")
        r = run_tool(["nbdcopy", srv.export_uri(path), str(out)], timeout=60)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == fx.members[path], path


def test_default_export_is_primary(cat, serve):
    fx = cat["dir"]
    with serve("dir").client(export="") as c:
        assert c.size == len(fx.primary)
        assert c.pread(len(fx.primary), 0) == fx.primary


@pytest.mark.parametrize("name", catalog.DIRS)
def test_stream_memory_serves_secondary(cat, serve, name):
    fx = cat[name]
    with serve(name, "stream=memory").client() as c:
        assert c.size == len(fx.secondary)
        assert c.pread(len(fx.secondary), 0) == fx.secondary
    with serve(name, "stream=disk").client() as c:
        assert c.size == len(fx.primary)
        assert c.pread(4096, 0) == fx.primary[:4096]


def test_unknown_export_name_is_refused(cat, serve):
    srv = serve("dir")
    with pytest.raises((nbd.Error, ConnectionError)):
        srv.client(export="no/such/member", timeout=20)
    # the server keeps serving after refusing
    with srv.client(export="a.txt") as c:
        assert c.pread(10, 0) == cat["dir"].members["a.txt"][:10]


def test_single_file_archive_lists_default_export(cat):
    # nbdinfo's [ CMD ] form starts nbdkit with socket activation (so no -s here)
    argv = ["nbdkit", "--exit-with-parent", *plugin_argv(cat["text"].path)]
    r = run_tool(["nbdinfo", "--list", "--json", "--", "[", *argv, "]"], timeout=60)
    assert r.returncode == 0, r.stderr
    exports = json.loads(r.stdout)["exports"]
    assert [e["export-size"] for e in exports if e["export-name"] == ""] == \
        [len(cat["text"].primary)]


def test_member_partial_reads_cross_blocks(cat, serve):
    """Reads inside a many-block member, at offsets relative to the member's start."""
    import random

    fx = cat["dir_zstd"]
    data = fx.members["sub/deeper/c.dat"]
    rnd = random.Random(5)
    with serve("dir_zstd").client(export="sub/deeper/c.dat", strict_bounds=False) as c:
        for _ in range(60):
            off = rnd.randrange(len(data))
            ln = min(len(data) - off, rnd.choice([1, 100, 4096, 20_000]))
            assert c.pread(ln, off) == data[off:off + ln], (off, ln)
        with pytest.raises(nbd.Error) as ei:  # past the member's end, not into the next file
            c.pread(2, len(data) - 1)
        assert ei.value.errnum == errno.EINVAL


def test_member_extents(cat, serve):
    srv = serve("dir")
    with srv.client(export="zeros.img") as c:
        ext = c.block_status(c.size, 0)
        assert sum(n for _, n, _ in ext) == c.size == 500_000
        assert all(f & nbd.STATE_ZERO for _, _, f in ext), ext
    with srv.client(export="a.txt") as c:
        ext = c.block_status(c.size, 0)
        assert not any(f & nbd.STATE_ZERO for _, _, f in ext), ext
    with srv.client(export="memory") as c:
        ext = c.block_status(c.size, 0)
        assert sum(n for _, n, _ in ext) == c.size
        assert not any(f & nbd.STATE_ZERO for _, _, f in ext), ext


@pytest.fixture(scope="module")
def many_members(tmp_path_factory):
    """A directory archive with more members than nbdkit accepts in one export list (10000)."""
    import hexz

    root = tmp_path_factory.mktemp("many")
    src = root / "tree"
    (src / "s").mkdir(parents=True)
    names = [f"s/f{i:05d}.txt" for i in range(10_010)]
    for n in names:
        (src / n).write_bytes(n.encode() + b"\n")
    dst = root / "many.hxz"
    hexz.pack(str(src), str(dst), compression="lz4")
    return dst, names


def test_more_members_than_nbdkit_can_list(many_members, pool):
    """nbdkit 1.32 refuses more than 10000 exports in one list. The listing must still work
    (truncated), and every member stays reachable by name."""
    path, names = many_members
    srv = pool.get(path)
    listed = list_exports(srv.sock)
    assert "" in listed or len(listed) > 0
    assert set(listed) <= set(names) | {""}
    assert len(listed) >= 9000
    for n in (names[0], names[5000], names[-1]):
        with srv.client(export=n) as c:
            assert c.pread(c.size, 0) == n.encode() + b"\n"


def test_names_equal_after_lossy_conversion(tmp_path, pool):
    """Two non-UTF-8 file names become the same manifest path (invalid bytes turn into
    U+FFFD): the name is listed once and serves the first of the two files in manifest
    order, never a mix."""
    import hexz

    import hxz

    src = tmp_path / "tree"
    src.mkdir()
    contents = {b"a\xff": b"first-candidate " * 100, b"a\xfe": b"second candidate " * 300}
    for raw, data in contents.items():
        with open(bytes(src) + b"/" + raw, "wb") as f:
            f.write(data)
    dst = tmp_path / "lossy.hxz"
    hexz.pack(str(src), str(dst), compression="lz4")
    with hxz.open_archive(dst) as arc:
        paths = [m.path for m in arc.members()]
        first_size = arc.members()[0].size
    assert paths == ["a\ufffd", "a\ufffd"]
    expected = next(d for d in contents.values() if len(d) == first_size)
    srv = pool.get(dst)
    assert list_exports(srv.sock).count("a\ufffd") == 1
    with srv.client(export="a\ufffd") as c:
        assert c.pread(c.size, 0) == expected
