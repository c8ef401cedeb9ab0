"""NBD_CMD_CACHE: the plugin answers it natively by decoding into its block cache, so
nbdkit's readahead filter, qemu's prefetch and nbdsh's ``h.cache()`` work."""

from __future__ import annotations

import errno

import nbd
import pytest

from tests.support.archives import corrupt
from tests.support.nbd import Server


def _handle(srv: Server) -> nbd.NBD:
    h = nbd.NBD()
    h.set_handshake_flags(h.get_handshake_flags())
    h.connect_unix(srv.sock)
    return h


def test_cache_is_native_and_reads_stay_exact(cat, tmp_path):
    fx = cat["text"]
    srv = Server(tmp_path / "srv", fx.path)
    try:
        h = _handle(srv)
        try:
            assert h.can_cache()
            h.cache(len(fx.primary), 0)
            assert h.pread(1 << 20, 12345) == fx.primary[12345:12345 + (1 << 20)]
        finally:
            h.shutdown()
    finally:
        assert srv.stop() == 0


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
