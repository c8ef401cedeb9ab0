"""A slow link for benchmarks: a TCP relay on 127.0.0.1 whose server-to-client direction
shares one token bucket across all its connections.

nginx's ``limit_rate`` cannot stand in for a slow link here: it limits each response, and
a 256 KiB range reply fits in the loopback socket buffer at once, so it is never slowed.
The relay limits what a real link limits, the bytes per second of all connections
together, so a client that moves fewer bytes finishes sooner.
"""

from __future__ import annotations

import socket
import threading
import time

from nbdsuite.launch import free_port


class SlowLink:
    """Relay 127.0.0.1:``port`` to ``target_port`` at ``rate`` bytes/s downstream."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target_port = target_port
        self.rate = rate
        self.port = free_port()
        self._lock = threading.Lock()
        self._next = time.monotonic()        # when the link is free again
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._socks: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _take(self, n: int) -> None:
        """Wait until ``n`` more bytes fit in the link's rate."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n / self.rate
            wait = self._next - now
        if wait > 0:
            time.sleep(wait)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            for s in (client, server):
                # Without it Nagle holds each reply's last segment for the peer's delayed
                # ACK (40 ms), which would slow small requests far below the rate.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limited: bool) -> None:
        try:
            while True:
                data = src.recv(64 << 10)
                if not data:
                    break
                if limited:
                    self._take(len(data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        for s in self._socks:
            s.close()
