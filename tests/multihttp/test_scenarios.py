"""The old suite's scenarios and the plugin's features, against real server processes."""

from __future__ import annotations

import random

import nbd
import pytest

from tests.multihttp.conftest import make_disk

MiB = 1 << 20
SIZE = 16 * MiB


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    data = make_disk(path, SIZE, seed=7)
    return path, data


def test_read_all(disk, servers, connect):
    path, data = disk
    h = connect(servers(path).url)
    assert h.get_size() == SIZE
    got = bytearray()
    for off in range(0, SIZE, 4 * MiB):
        got += h.pread(4 * MiB, off)
    assert got == data


def test_simple_write(disk, servers, connect):
    path, data = disk
    h = connect(servers(path).url)
    h.pwrite(b"hello, world", 0)
    h.flush()
    assert h.pread(12, 0) == b"hello, world"
    assert path.read_bytes()[:12] == b"hello, world"
    assert path.read_bytes()[12:] == data[12:]


def test_unaligned_read(disk, servers, connect):
    path, data = disk
    h = connect(servers(path).url)
    assert h.pread(2518684, 4155625) == data[4155625:4155625 + 2518684]


def test_unaligned_write(disk, servers, connect):
    path, data = disk
    h = connect(servers(path).url)
    chunk = random.Random(3).randbytes(3732428)
    h.pwrite(chunk, 9458932)
    h.flush()
    expect = data[:9458932] + chunk + data[9458932 + len(chunk):]
    # Read back through NBD and from the file itself (no cache in between).
    assert h.pread(len(chunk) + 2, 9458931) == expect[9458931:9458931 + len(chunk) + 2]
    assert path.read_bytes() == expect


def test_write_all_in_4mib_chunks(disk, servers, connect):
    path, _ = disk
    h = connect(servers(path).url)
    new = random.Random(11).randbytes(SIZE)
    for off in range(0, SIZE, 4 * MiB):
        h.pwrite(new[off:off + 4 * MiB], off)
    h.flush()
    assert path.read_bytes() == new


@pytest.mark.parametrize("aligned", [True, False])
def test_random_writes_against_model(disk, servers, connect, aligned):
    path, data = disk
    h = connect(servers(path).url)
    model = bytearray(data)
    rnd = random.Random(5 if aligned else 6)
    for _ in range(60):
        if aligned:
            n = rnd.randrange(1, 65) * 4096
            off = rnd.randrange(0, (SIZE - n) // 4096 + 1) * 4096
        else:
            n = rnd.randrange(1, 300_000)
            off = rnd.randrange(0, SIZE - n + 1)
        buf = rnd.randbytes(n)
        h.pwrite(buf, off)
        model[off:off + n] = buf
        # Read back a window around it: catches shifted or spilled writes.
        lo, hi = max(0, off - 100), min(SIZE, off + n + 100)
        assert h.pread(hi - lo, lo) == model[lo:hi]
    h.flush()
    assert path.read_bytes() == model


def test_mirroring_two_nbdkits_one_server(disk, servers, connect):
    path, _ = disk
    url = servers(path).url
    a, b = connect(url), connect(url)
    a.pwrite(b"A" * 10000, 123457)
    assert b.pread(10000, 123457) == b"A" * 10000
    b.pwrite(b"B" * 5000, 5)
    assert a.pread(5000, 5) == b"B" * 5000


def test_features_and_zero_trim_fua(disk, servers, connect):
    path, data = disk
    h = connect(servers(path).url)
    assert h.can_flush() and h.can_fua() and h.can_multi_conn()
    assert h.can_zero() and h.can_trim()
    h.zero(65536, 4096)
    h.pwrite(b"z" * 512, 1 << 20, nbd.CMD_FLAG_FUA)
    h.trim(8192, 2 << 20)
    h.flush()
    got = path.read_bytes()
    assert got[4096:4096 + 65536] == bytes(65536)
    assert got[1 << 20:(1 << 20) + 512] == b"z" * 512
    assert h.pread(8192, 2 << 20) == got[2 << 20:(2 << 20) + 8192]
    assert got[:4096] == data[:4096]


def test_read_only_mode(disk, servers, connect):
    path, data = disk
    h = connect(servers(path).url, readonly=True)
    assert h.is_read_only()
    assert h.pread(1 << 20, 12345) == data[12345:12345 + (1 << 20)]
    with pytest.raises(nbd.Error):
        h.pwrite(b"x", 0)
    assert path.read_bytes() == data


def test_more_than_16_urls(disk, servers, connect, tmp_path):
    path, data = disk
    good = servers(path).url
    # 20 dead URLs first (closed ports: refused at once), then the live one.
    from nbdsuite.launch import free_port
    dead = [f"http://127.0.0.1:{free_port()}/" for _ in range(20)]
    h = connect(dead + [good], "retries=0")
    assert h.get_size() == SIZE
    assert h.pread(4096, 8192) == data[8192:12288]
    h.pwrite(b"q" * 4096, 0)
    assert path.read_bytes()[:4096] == b"q" * 4096


def test_device_size_with_no_server_up(disk, servers, nbdkit_proc, tmp_path):
    path, data = disk
    from nbdsuite.launch import free_port
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    k = nbdkit_proc(url, "device-size=16M", "retries=1", "retry-delay=0.05")
    h = k.handle()
    assert h.get_size() == SIZE
    with pytest.raises(nbd.Error) as e:
        h.pread(4096, 0)
    assert e.value.errno == "EIO"
    servers(path, port=port)          # the server comes up later
    assert h.pread(4096, 4096) == data[4096:8192]
    h.pwrite(b"late", 100)
    assert path.read_bytes()[100:104] == b"late"
    h.shutdown()


def test_no_server_without_device_size_refuses_open(tmp_path, nbdkit_proc):
    from nbdsuite.launch import free_port
    urls = [f"http://127.0.0.1:{free_port()}/", f"http://127.0.0.1:{free_port()}/"]
    k = nbdkit_proc(urls)
    with pytest.raises(nbd.Error):
        k.handle().get_size()
    k.stop()
    log = k.log.read_text()
    for u in urls:
        assert u in log and "connection refused" in log


@pytest.mark.parametrize("param,bound", [(None, 4), ("connections=7", 7)])
def test_connections_per_server_are_bounded(tmp_path, fake, nbdkit_proc, param, bound):
    """Many NBD requests in flight never open more than connections= (default 4)."""
    import subprocess

    path = tmp_path / "disk.img"
    data = make_disk(path, 8 * MiB, seed=12)
    srv = fake(path)
    k = nbdkit_proc(srv.url, *([param] if param else []), nbdkit_opts=["--threads", "40"])
    srv.mode, srv.stall = "stall", 0.05       # each GET holds its connection a while
    out = tmp_path / "out.img"
    subprocess.run(["nbdcopy", "--connections=4", "--requests=32", "--request-size=65536",
                    f"nbd+unix:///?socket={k.sock}", str(out)], check=True, timeout=120)
    assert out.read_bytes() == data
    assert 1 < srv.max_conns <= bound
    if param:
        assert srv.max_conns > 4    # the parameter really raised the default
