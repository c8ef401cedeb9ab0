"""Concurrent clients for load tests: several NBD connections reading random ranges at
once, each from its own thread, every reply compared with the expected bytes."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence

from tests.support.nbd import Client


def random_reads(connect: Callable[[], Client], data: bytes, *, clients: int = 6,
                 reads: int = 60, sizes: Sequence[int] = (1, 4096, 65536, 1 << 20),
                 timeout: float = 120) -> list[str]:
    """Run ``clients`` connections of ``reads`` random reads each; return what went wrong
    (a reply that differs from ``data``, or an exception).  A client thread still running
    after ``timeout`` seconds fails the test: a hang is never an acceptable outcome."""
    errors: list[str] = []
    size = len(data)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with connect() as c:
                for _ in range(reads):
                    off = rnd.randrange(size)
                    n = min(size - off, rnd.choice(sizes))
                    if c.pread(n, off) != data[off:off + n]:
                        errors.append(f"pread({n}, {off}) differs")
        except Exception as e:  # noqa: BLE001 - returned to the test
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
        assert not t.is_alive(), "a client thread hung"
    return errors
