"""bench/slowlink.py: the relay passes bytes unchanged and holds all its connections
together to the rate, which is what makes the slow-link rows of bench_remote.py mean
something."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from slowlink import SlowLink  # noqa: E402


def _echo_blob_server(blob: bytes) -> socket.socket:
    """A server that answers every connection with ``blob`` and closes."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=c: (c.sendall(blob), c.close()),
                             daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _fetch(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        out = bytearray()
        while chunk := s.recv(1 << 16):
            out += chunk
        return bytes(out)


def test_bytes_pass_unchanged_and_all_connections_share_the_rate():
    blob = os.urandom(1 << 20)
    srv = _echo_blob_server(blob)
    link = SlowLink(srv.getsockname()[1], rate=8 << 20)      # 8 MiB/s
    try:
        got: list[bytes] = []
        t0 = time.monotonic()
        threads = [threading.Thread(target=lambda: got.append(_fetch(link.port)))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - t0
        assert got == [blob] * 3
        # 3 MiB through one 8 MiB/s bucket takes at least ~0.37 s, whatever the number
        # of connections (a per-connection limit would let them finish in ~0.12 s).
        assert elapsed >= 0.3, elapsed
    finally:
        link.stop()
        srv.close()
