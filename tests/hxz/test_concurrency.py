"""Concurrent readers and the readahead worker never see wrong bytes."""

from __future__ import annotations

import random
import threading

import pytest

import hxz
from tests.support.archives import builder as B


@pytest.mark.parametrize("decoders", [1, 3])
def test_threads_and_readahead_with_tiny_cache(tmp_path, decoders):
    r = random.Random(3)
    recs = []
    for i in range(120):
        kind = i % 4
        if kind == 0:
            recs.append(B.zero(r.randint(1, 9000)))
        elif kind == 1:
            recs.append(B.data(r.randbytes(r.randint(1, 70000))))
        elif kind == 2:
            recs.append(B.data(b"dup" * 3000))             # dedup'd payload
        else:
            recs.append(B.data(bytes([i]) * r.randint(1, 20000)))
    expect = b"".join(bytes(x.length) if x.kind == "zero" else x.data for x in recs)
    path = B.write(tmp_path / "c.hxz", B.build(recs, page_records=7))
    # cache_size small enough that blocks and pages get evicted constantly
    with hxz.open_archive(path, cache_size=1 << 20) as a:
        s = a.stream()
        s.enable_readahead(window=256 << 10, chunk=64 << 10, min_avg_block=0,
                           threads=decoders)
        assert a.readahead is not None and len(a.readahead._threads) == decoders
        errors = []

        def reader(seed):
            rr = random.Random(seed)
            try:
                pos = 0
                for _ in range(150):
                    if rr.random() < 0.5:      # sequential runs feed the readahead worker
                        n = min(rr.randint(1, 100000), s.size - pos)
                        assert s.read(pos, n) == expect[pos:pos + n]
                        pos = (pos + n) % s.size
                    else:
                        o = rr.randrange(s.size)
                        n = rr.randint(0, min(50000, s.size - o))
                        assert s.read(o, n) == expect[o:o + n]
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[0]
        assert a.block_cache.used <= a.block_cache.capacity
        a.readahead.stop()          # joins the worker: nothing may stay claimed after it
        assert a.block_cache._inflight == {}
