"""A misbehaving server never yields wrong bytes: failover to a good one, or EIO."""

from __future__ import annotations

import time

import nbd
import pytest

from tests.multihttp.conftest import make_disk

MiB = 1 << 20
BAD_MODES = ["200", "200-range", "bad-range", "other-size", "short", "drop", "stall",
             "trickle", "5xx", "gzip"]
FAST = ["timeout=1", "connect-timeout=1", "retries=1", "retry-delay=0.01"]


@pytest.fixture
def two(tmp_path, fake):
    path = tmp_path / "disk.img"
    data = make_disk(path, 4 * MiB, seed=21)
    return path, data, fake(path), fake(path)


@pytest.mark.parametrize("mode", BAD_MODES)
def test_bad_server_fails_over(two, connect, mode):
    path, data, bad, good = two
    h = connect([bad.url, good.url], *FAST)
    bad.mode, bad.stall = mode, 2.5
    off, n = 70_000, 256 * 1024
    assert h.pread(n, off) == data[off:off + n]
    assert any(m == "GET" for m, *_ in good.requests)


@pytest.mark.parametrize("mode", BAD_MODES)
def test_bad_only_server_gives_eio(two, connect, mode):
    path, data, bad, _ = two
    h = connect(bad.url, *FAST)
    bad.mode, bad.stall = mode, 2.5
    t0 = time.monotonic()
    with pytest.raises(nbd.Error) as e:
        h.pread(64 * 1024, 4096)
    assert e.value.errno == "EIO"
    # retries=1: two attempts of at most timeout (1 s) each, plus backoff.
    assert time.monotonic() - t0 < 6


def test_range_reply_of_unknown_complete_length_is_data(two, connect):
    # The disk's size came from HEAD; a 206 that names exactly the range asked for but
    # leaves the complete length open (``/*``) is accepted, unlike in hxz's HttpSource,
    # which pins the object's size.
    path, data, bad, _ = two
    h = connect(bad.url, *FAST)
    bad.mode = "unknown-size"
    off, n = 70_000, 256 * 1024
    assert h.pread(n, off) == data[off:off + n]
    assert any(m == "GET" for m, *_ in bad.requests)


def test_refuses_head_is_skipped_at_probe(two, connect):
    path, data, bad, good = two
    bad.mode = "no-head"
    h = connect([bad.url, good.url], *FAST)
    assert h.pread(4096, 0) == data[:4096]
    assert not any(m == "GET" for m, *_ in bad.requests)


def test_refuses_head_only_server_refuses_open(tmp_path, fake):
    path = tmp_path / "disk.img"
    make_disk(path, MiB)
    bad = fake(path)
    bad.mode = "no-head"
    from tests.multihttp.conftest import nbdkit_args
    h = nbd.NBD()
    with pytest.raises(nbd.Error):
        h.connect_command(nbdkit_args(bad.url))
        h.get_size()


def test_server_of_other_size_is_excluded(tmp_path, fake, connect):
    p1, p2 = tmp_path / "a.img", tmp_path / "b.img"
    data = make_disk(p1, 2 * MiB, seed=1)
    make_disk(p2, 3 * MiB, seed=2)
    a, b = fake(p1), fake(p2)
    h = connect([a.url, b.url], *FAST)
    assert h.get_size() == 2 * MiB
    a.mode = "5xx"
    with pytest.raises(nbd.Error):
        h.pread(4096, 0)            # B is a different disk: never read from it
    assert not any(m == "GET" for m, *_ in b.requests)
    a.mode = "ok"
    assert h.pread(4096, 0) == data[:4096]


@pytest.mark.parametrize("status,err", [(507, "ENOSPC"), (413, "ENOSPC"), (403, "EPERM")])
def test_write_errors_map_to_errno(two, connect, status, err):
    # 403 is EROFS in the plugin; nbdkit sends EROFS as NBD_EPERM on the wire.
    path, data, srv, _ = two
    h = connect(srv.url, *FAST)
    srv.put_status = status
    with pytest.raises(nbd.Error) as e:
        h.pwrite(b"x" * 4096, 0)
    assert e.value.errno == err
    assert path.read_bytes() == data


@pytest.mark.parametrize("old", [False, True])
def test_server_without_extensions(tmp_path, fake, connect, old):
    """No OPTIONS features (and, like the old server, no keep-alive): durable
    PUTs, zero emulated, flush a no-op."""
    path = tmp_path / "disk.img"
    data = make_disk(path, 2 * MiB, seed=5)
    srv = fake(path, features=())
    srv.old = old
    h = connect(srv.url, *FAST)
    assert h.pread(MiB, 3) == data[3:MiB + 3]
    assert h.can_flush() and h.can_fua()
    assert not h.can_trim()
    h.pwrite(b"w" * 4096, 8192)
    h.zero(4096, 0)                   # nbdkit emulates with pwrite
    h.flush()
    got = path.read_bytes()
    assert got[:4096] == bytes(4096) and got[8192:12288] == b"w" * 4096
    assert got[4096:8192] == data[4096:8192]
    methods = {m for m, *_ in srv.requests}
    assert "PATCH" not in methods
    assert all("flush=n" not in p for m, p, _ in srv.requests if m == "PUT")


def test_requests_are_well_formed(two, connect):
    """Exact inclusive Range; PUT with Content-Length, no chunking, no Expect."""
    path, data, srv, _ = two
    h = connect(srv.url, *FAST)
    h.pread(4096, 8192)
    h.pwrite(b"p" * 1000, 5000)
    h.pwrite(b"f" * 512, 0, nbd.CMD_FLAG_FUA)
    h.flush()
    gets = [hd for m, _, hd in srv.requests if m == "GET"]
    assert gets[-1]["Range"] == "bytes=8192-12287"
    puts = [(p, hd) for m, p, hd in srv.requests if m == "PUT"]
    (p1, h1), (p2, h2) = puts[-2:]
    assert h1["Content-Range"] == "bytes 5000-5999/*" and h1["Content-Length"] == "1000"
    assert p1.endswith("?flush=n") and p2.endswith("?flush=y")
    for _, hd in puts:
        assert "Expect" not in hd and "Transfer-Encoding" not in hd
    assert srv.flushes >= 1


def test_slow_server_within_timeout_is_not_a_failure(two, connect):
    """timeout= bounds data requests; connect-timeout (probe) does not leak into them."""
    path, data, srv, other = two
    h = connect([srv.url, other.url], "connect-timeout=0.3", "timeout=5", "retries=0")
    srv.mode, srv.stall = "stall", 1.0
    assert h.pread(4096, 0) == data[:4096]
    assert not any(m == "GET" for m, *_ in other.requests)


def test_single_server_lost_unflushed_writes_fail_flush_once(two, connect):
    path, data, srv, _ = two
    h = connect(srv.url, *FAST)
    h.pwrite(b"u" * 4096, 0)                     # ?flush=n: not yet durable
    srv.mode = "5xx"
    with pytest.raises(nbd.Error) as e:
        h.flush()
    assert e.value.errno == "EIO"
    srv.mode = "ok"
    h.flush()                                    # reported once, like fsync


def test_several_servers_make_every_write_durable(two, connect):
    path, data, a, b = two
    h = connect([a.url, b.url], *FAST)
    h.pwrite(b"d" * 4096, 0)
    h.flush()
    puts = [p for m, p, _ in a.requests if m == "PUT"]
    assert puts and all("flush=n" not in p for p in puts)
    assert not any(m == "PATCH" for m, *_ in a.requests)


def test_device_size_smaller_than_server_is_allowed_larger_is_not(tmp_path, fake, connect,
                                                                   nbdkit_proc):
    path = tmp_path / "disk.img"
    data = make_disk(path, 2 * MiB, seed=8)
    srv = fake(path)
    h = connect(srv.url, "device-size=1M")
    assert h.get_size() == MiB
    assert h.pread(4096, MiB - 4096) == data[MiB - 4096:MiB]
    k = nbdkit_proc(srv.url, "device-size=3M", *FAST)
    hh = k.handle()
    assert hh.get_size() == 3 * MiB
    with pytest.raises(nbd.Error):
        hh.pread(4096, 0)
    hh.shutdown()
    k.stop()
    assert "smaller than device-size" in k.log.read_text()


def test_silent_server_is_left_after_one_timeout(two, connect):
    """A timed-out server is not retried (each retry would cost a full timeout)."""
    path, data, bad, good = two
    h = connect([bad.url, good.url], "timeout=1", "retries=3", "retry-delay=0.01")
    bad.mode, bad.stall = "stall", 5
    t0 = time.monotonic()
    assert h.pread(4096, 0) == data[:4096]
    assert time.monotonic() - t0 < 2.5
    assert sum(m == "GET" for m, *_ in bad.requests) == 1
