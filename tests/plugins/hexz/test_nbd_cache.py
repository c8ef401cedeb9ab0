"""NBD_CMD_CACHE: the plugin answers can_cache NATIVE and prefetches into its block cache.

The test proves a cached range is served from memory: after the cache request the
archive's payload bytes are overwritten in place (the server's open file sees the change),
and the cached range still reads right while an uncached one fails with EIO.
"""

from __future__ import annotations

import errno

import nbd
import pytest

from tests.support.archives import corrupt, spec
from tests.support.nbd import Server


def _wreck_payloads(path) -> None:
    """Overwrite every stored payload with other bytes, index untouched."""
    layout = spec.parse(path)
    with open(path, "r+b") as f:
        for r in {r.offset: r for r in layout.records(0) if r.is_stored}.values():
            f.seek(r.offset)
            f.write(bytes(b ^ 0x55 for b in f.read(r.length)))
            f.seek(r.offset)


def test_cache_request_prefetches_into_the_block_cache(cat, tmp_path):
    fx = cat["random"]
    path = tmp_path / "r.hxz"
    path.write_bytes(fx.path.read_bytes())
    half = len(fx.primary) // 2
    srv = Server(tmp_path / "srv", path, "readahead=off")
    try:
        with srv.client() as c:
            assert c.h.can_cache()
            c._wait(c.h.aio_cache(half, 0), "cache")
            _wreck_payloads(path)
            assert c.pread(half, 0) == fx.primary[:half]       # from the block cache
            with pytest.raises(nbd.Error) as ei:                # not cached: reads the file
                c.pread(4096, len(fx.primary) - 4096)
            assert ei.value.errnum == errno.EIO
    finally:
        assert srv.stop() == 0


def _handle(srv: Server) -> nbd.NBD:
    h = nbd.NBD()
    h.connect_unix(srv.sock)
    return h


def test_cache_of_a_damaged_block_is_eio(cat, tmp_path):
    """Caching really decodes: a damaged payload is reported, as a read would report it."""
    fx = cat["text"]
    rec = [r for r in fx.layout().records(0) if r.is_stored][4]
    bad = tmp_path / "crc.hxz"
    corrupt.set_record_field(fx.path, bad, 4, "checksum", rec.checksum ^ 1)
    srv = Server(tmp_path / "srv", bad)
    try:
        h = _handle(srv)
        try:
            with pytest.raises(nbd.Error) as ei:
                h.cache(rec.logical_len, rec.start)
            assert ei.value.errnum == errno.EIO
            h.cache(4096, 0)
        finally:
            h.shutdown()
    finally:
        assert srv.stop() == 0


def test_readahead_filter_works_without_warning(cat, tmp_path):
    """nbdkit 1.32's readahead filter needs NBD_CMD_CACHE and the PARALLEL thread model
    (it sends cache requests from its own thread): threads=parallel gives both."""
    fx = cat["multipage"]
    srv = Server(tmp_path / "srv", fx.path, "threads=parallel", extra=["--filter=readahead"])
    try:
        with srv.client() as c:
            step = 256 << 10
            for off in range(0, 4 << 20, step):
                assert c.pread(step, off) == fx.primary[off:off + step]
        log = srv.log_text()
        assert "warning" not in log.lower(), log
    finally:
        assert srv.stop() == 0
