"""Failover under load: SIGKILL the active server while reads and writes stream."""

from __future__ import annotations

import random
import threading
import time

import nbd
import pytest

from multihttp import params as mparams
from tests.multihttp.conftest import make_disk

MiB = 1 << 20
SIZE = 16 * MiB
THREADS = 4
REGION = SIZE // THREADS
PLUGIN_PARAMS = ["timeout=2", "connect-timeout=1", "retries=2", "retry-delay=0.05"]


def _worker(h: nbd.NBD, idx: int, model: bytearray, stop: threading.Event,
            stats: dict, lock: threading.Lock) -> None:
    rnd = random.Random(idx)
    base = idx * REGION
    while not stop.is_set():
        n = rnd.choice([4096, 65536, 300_001])
        off = base + rnd.randrange(0, REGION - n)
        t0 = time.monotonic()
        try:
            if rnd.random() < 0.5:
                buf = rnd.randbytes(n)
                h.pwrite(buf, off)
                model[off:off + n] = buf       # only this thread touches its region
                kind = "write"
            else:
                got = h.pread(n, off)
                if got != model[off:off + n]:
                    with lock:
                        stats["wrong"] += 1
                kind = "read"
        except nbd.Error as e:
            with lock:
                stats["errors"].append(f"{e}")
            continue
        dt = time.monotonic() - t0
        with lock:
            stats[kind] += 1
            stats["max_latency"] = max(stats["max_latency"], dt)
            stats["done_at"].append(time.monotonic())


def test_failover_under_load_then_eio(tmp_path, servers, nbdkit_proc):
    path = tmp_path / "disk.img"
    model = bytearray(make_disk(path, SIZE, seed=9))
    a, b = servers(path), servers(path)
    k = nbdkit_proc([a.url, b.url], *PLUGIN_PARAMS)
    handles = [k.handle() for _ in range(THREADS)]
    stop = threading.Event()
    lock = threading.Lock()
    stats = {"read": 0, "write": 0, "wrong": 0, "errors": [], "max_latency": 0.0,
             "done_at": []}
    threads = [threading.Thread(target=_worker, args=(h, i, model, stop, stats, lock))
               for i, h in enumerate(handles)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.7)
        before = stats["read"] + stats["write"]
        killed_at = time.monotonic()
        a.kill()                       # SIGKILL, mid-stream
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    after = stats["read"] + stats["write"]
    assert not stats["errors"], stats["errors"][:3]
    assert stats["wrong"] == 0
    assert before > 20 and after - before > 20, (before, after)
    first_after_kill = min(t for t in stats["done_at"] if t > killed_at)
    assert first_after_kill - killed_at < 1.0
    # Every write was acknowledged durable: the file equals the model.
    assert path.read_bytes() == model
    assert "failed over to " + b.url in k.log.read_text()

    # Now the second server dies too: EIO within the documented bound, no hang.
    b.kill()
    h = handles[0]
    p = mparams.parse([("urls", f"{a.url},{b.url}")] +
                      [tuple(x.split("=", 1)) for x in PLUGIN_PARAMS])
    bound = mparams.worst_case_seconds(p)
    t0 = time.monotonic()
    with pytest.raises(nbd.Error) as e:
        h.pread(4096, 0)
    elapsed = time.monotonic() - t0
    assert e.value.errno == "EIO"
    assert elapsed < bound, (elapsed, bound)
    for hh in handles:
        hh.shutdown()


def test_in_flight_read_completes_on_other_server(tmp_path, fake, connect):
    """Server A drops the connection mid-body: the same request completes on B (C4)."""
    path = tmp_path / "disk.img"
    data = make_disk(path, 4 * MiB, seed=2)
    a, b = fake(path), fake(path)
    h = connect([a.url, b.url], "retries=1", "retry-delay=0.01")
    assert h.pread(4096, 0) == data[:4096]       # A is current
    a.mode = "drop"
    assert h.pread(1 * MiB, 12345) == data[12345:12345 + MiB]
    assert any(m == "GET" for m, *_ in b.requests)


def test_failover_wraps_around_to_earlier_servers(tmp_path, fake, connect):
    """Servers before the current one are tried too (the old plugin stopped early)."""
    path = tmp_path / "disk.img"
    data = make_disk(path, MiB, seed=4)
    a, b, c = fake(path), fake(path), fake(path)
    h = connect([a.url, b.url, c.url], "retries=0")
    a.mode = "5xx"
    assert h.pread(4096, 0) == data[:4096]       # fails over to B
    a.mode = "ok"
    b.mode = "5xx"
    c.mode = "5xx"
    assert h.pread(4096, 4096) == data[4096:8192]   # B, C fail; wraps to A
