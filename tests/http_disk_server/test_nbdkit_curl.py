"""An independent client: nbdkit's C curl plugin (exclusive Range end, chunked PUT with
Expect: 100-continue and ``Content-Range: bytes a-(a+n)/-1``) reads and writes correctly."""

from __future__ import annotations

import os
import time

import nbd


def test_nbdkit_curl_plugin_roundtrip(server, disk):
    h = nbd.NBD()
    h.connect_command(["nbdkit", "-s", "--exit-with-parent", "curl", f"url={server.url}",
                       "timeout=20"])
    try:
        size = h.get_size()
        assert size == len(disk[1])
        # The last block: curl asks for bytes=(size-4096)-size, one past the end (S2).
        assert h.pread(4096, size - 4096) == disk[1][-4096:]
        assert h.pread(65536, 12345) == disk[1][12345:12345 + 65536]
        writes = {i * 4096 * 9: os.urandom(4096) for i in range(10)}
        t0 = time.monotonic()
        for off, data in writes.items():
            h.pwrite(data, off)
        # The old server stalled 1 s per write on Expect: 100-continue (C8).
        assert time.monotonic() - t0 < 3
        last = os.urandom(4096)
        h.pwrite(last, size - 4096)
        for off, data in writes.items():
            assert h.pread(4096, off) == data
    finally:
        h.shutdown()
    expect = bytearray(disk[1])
    for off, data in writes.items():
        expect[off:off + 4096] = data
    expect[-4096:] = last
    assert disk[0].read_bytes() == expect
