"""Reading archives through real nbdkit + plugins/hexz.py with libnbd, nbdcopy and qemu-img.

Every expectation is the packed input, not hexz's own reader (spec §17).
"""

from __future__ import annotations

import errno
import random
import zlib

import nbd
import pytest

from tests.support import load
from tests.support.archives import catalog, checks
from tests.support.nbd import Client, plugin_argv, run_tool

ALL = catalog.ALL


@pytest.mark.parametrize("name", ALL)
def test_nbdcopy_whole_image(cat, serve, tmp_path, name):
    fx = cat[name]
    srv = serve(name)
    with srv.client() as c:
        assert c.size == len(fx.primary), "export size must be the exact logical size"
    out = tmp_path / "copy.img"
    r = run_tool(["nbdcopy", srv.uri, str(out)], timeout=120)
    assert r.returncode == 0, r.stderr
    got = out.read_bytes()
    assert len(got) == len(fx.primary)
    assert got == fx.primary, f"first difference at {checks.first_diff(got, fx.primary)}"


@pytest.mark.parametrize("name", ["text_100000", "random_zstd", "multipage", "dir",
                                  "thin_shifted", "thin_of_thin", "thin_lz4_of_zstd"])
def test_qemu_img_compare(cat, serve, name):
    fx = cat[name]
    srv = serve(name)
    with srv.client() as c:  # qemu-img compare tolerates a size difference made of zeros
        assert c.size == len(fx.primary)
    r = run_tool(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(fx.raw), srv.uri],
                 timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert b"Images are identical" in r.stdout


@pytest.mark.parametrize("name", catalog.SUBSTANTIAL + ["edge_65537", "edge_1m",
                                                            "edge_1m_plus", "zeros_zstd"])
def test_edge_and_random_reads(cat, serve, name):
    fx = cat[name]
    srv = serve(name)
    seed = zlib.crc32(name.encode())
    with srv.client() as c:
        for off, ln in checks.edge_reads(fx.layout(), len(fx.primary), seed=seed):
            got = c.pread(ln, off)
            assert got == fx.primary[off:off + ln], f"pread({ln}, {off}) differs"


@pytest.mark.parametrize("name", [n for n in ALL if n != "empty"])
def test_last_byte_and_past_end(cat, serve, name):
    fx = cat[name]
    size = len(fx.primary)
    with serve(name).client(strict_bounds=False) as c:
        assert c.pread(1, size - 1) == fx.primary[-1:]
        if size >= 3:
            assert c.pread(3, size - 3) == fx.primary[-3:]
        # past the end: the server refuses (EINVAL), it does not pad with zeros
        for ln, off in ((1, size), (2, size - 1), (4096, size - 1), (1, size + 4096)):
            with pytest.raises(nbd.Error) as ei:
                c.pread(ln, off)
            assert ei.value.errnum == errno.EINVAL, (ln, off, ei.value)
        # and the connection is still usable afterwards
        assert c.pread(1, 0) == fx.primary[:1]


def test_empty_archive(cat, serve):
    with serve("empty").client(strict_bounds=False) as c:
        assert c.size == 0
        with pytest.raises(nbd.Error) as ei:
            c.pread(1, 0)
        assert ei.value.errnum == errno.EINVAL


@pytest.mark.parametrize("params", [(), ("threads=parallel",), ("readahead=off",),
                                    ("threads=parallel", "cache=256k")])
@pytest.mark.parametrize("name", ["multipage", "thin_of_thin", "dir_zstd", "random_zstd",
                                  "thin_of_mixed"])
def test_concurrent_connections(cat, serve, name, params):
    """Several connections, each driven from its own thread, read random ranges at once."""
    fx = cat[name]
    srv = serve(name, *params)
    errors = load.random_reads(srv.client, fx.primary)
    assert not errors, errors[:5]


@pytest.mark.parametrize("params", [(), ("threads=parallel",)])
def test_many_requests_in_flight(cat, serve, params):
    """One connection with 64 reads queued at once (nbdkit may run them in parallel)."""
    fx = cat["multipage"]
    rnd = random.Random(7)
    with serve("multipage", *params).client() as c:
        reqs = []
        for _ in range(64):
            off = rnd.randrange(len(fx.primary) - 70_000)
            ln = rnd.choice([512, 4096, 65536])
            buf = nbd.Buffer(ln)
            reqs.append((off, ln, buf, c.h.aio_pread(buf, off)))
        for off, ln, buf, cookie in reqs:
            c._wait(cookie, "queued pread")
            assert bytes(buf.to_bytearray()) == fx.primary[off:off + ln], (off, ln)


def test_export_properties(cat, serve):
    with serve("random").client() as c:
        assert c.h.is_read_only()
        assert c.h.can_multi_conn()
        mn = c.h.get_block_size(nbd.SIZE_MINIMUM)
        pref = c.h.get_block_size(nbd.SIZE_PREFERRED)
        mx = c.h.get_block_size(nbd.SIZE_MAXIMUM)
        # minimum 1: odd-sized images (any byte count) must stay fully readable
        assert mn == 1, mn
        assert pref >= 512 and pref & (pref - 1) == 0, pref
        assert mx >= pref and mx >= 1 << 20, mx
        # a read of the advertised maximum size works
        ln = min(mx, c.size)
        assert c.pread(ln, 0) == cat["random"].primary[:ln]


def test_writes_refused_without_dash_r(cat, tmp_path):
    """The plugin is read-only by itself, not only when nbdkit runs with -r."""
    argv = ["nbdkit", "-s", "--exit-with-parent", *plugin_argv(cat["text"].path)]
    with Client(argv=argv) as c:
        assert c.h.is_read_only()
        before = c.pread(4096, 0)
        with pytest.raises(nbd.Error):
            c.pwrite(b"x" * 4096, 0)
        assert c.pread(4096, 0) == before == cat["text"].primary[:4096]


def test_connect_command_single_shot(cat):
    """The `nbdkit -s` form that nbdkit's own tests use."""
    fx = cat["thin_zstd_of_lz4"]
    argv = ["nbdkit", "-s", "--exit-with-parent", "-r", *plugin_argv(fx.path)]
    with Client(argv=argv) as c:
        assert c.size == len(fx.primary)
        assert c.pread(len(fx.primary), 0) == fx.primary


@pytest.mark.parametrize("cache", ["1M", "100k", "1", "0"])
def test_small_cache_still_correct(cat, serve, cache):
    fx = cat["multipage_zstd"]
    srv = serve("multipage_zstd", f"cache={cache}")
    rnd = random.Random(99)
    with srv.client() as c:
        for _ in range(80):
            off = rnd.randrange(len(fx.primary))
            ln = min(len(fx.primary) - off, rnd.choice([1, 4096, 300_000]))
            assert c.pread(ln, off) == fx.primary[off:off + ln], (off, ln)


def test_sigterm_shutdown_is_clean(cat, tmp_path):
    """SIGTERM with a client connected: nbdkit (1.32) answers further requests with
    ESHUTDOWN (or drops the connection) and exits with status 0 once the client has gone."""
    import signal
    import time

    from tests.support.nbd import Server

    srv = Server(tmp_path / "srv", cat["random"].path)
    c = srv.client()
    assert c.pread(10, 0) == cat["random"].primary[:10]
    srv.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while True:
        try:
            c.pread(10, 0)
        except nbd.Error as e:
            # nbdkit refuses new requests, or has already dropped the idle connection
            assert e.errnum in (errno.ESHUTDOWN, errno.ECONNRESET, errno.EPIPE,
                                errno.ENOTCONN), e
            break
        assert time.monotonic() < deadline, "requests still served 10 s after SIGTERM"
        time.sleep(0.05)
    c.close()
    assert srv.stop() == 0
    assert "Traceback" not in srv.log_text()


def test_large_reads_across_pages(cat, serve):
    """Single requests of up to 16 MiB spanning every index page of the archive."""
    fx = cat["multipage"]
    size = len(fx.primary)
    with serve("multipage").client() as c:
        assert c.pread(size, 0) == fx.primary
        assert c.pread(size - 12_345, 6789) == fx.primary[6789:size - 12_345 + 6789]


def test_daemonized_with_relative_paths(cat, tmp_path):
    """nbdkit without -f forks and changes directory to /: a relative file= (and a parent
    found through it) must still work, and the forked server must serve correctly."""
    import os
    import signal
    import subprocess
    import time

    images = tmp_path / "images"
    images.mkdir()
    for n in ("thin_base", "thin_shifted"):
        (images / f"{n}.hxz").write_bytes(cat[n].path.read_bytes())
    # thin_shifted names its parent by absolute path; point it at the copy, relatively
    from tests.support.archives import corrupt

    corrupt.patch_header(cat["thin_shifted"].path, images / "child.hxz",
                              parent_paths=["thin_base.hxz"])
    sock, pidfile = tmp_path / "d.sock", tmp_path / "d.pid"
    r = subprocess.run(["nbdkit", "-U", str(sock), "-P", str(pidfile),
                        *plugin_argv("images/child.hxz")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline, "no pidfile"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        with Client(socket=str(sock)) as c:
            fx = cat["thin_shifted"]
            assert c.pread(len(fx.primary), 0) == fx.primary
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{pid}"), "daemonized nbdkit ignored SIGTERM"
