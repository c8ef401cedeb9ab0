"""A readahead worker: decompresses the next blocks of sequential readers in the background.

The request thread reports every completed read with ``observe``.  A read that starts where
an earlier one ended continues a sequential run; for such runs the worker is asked to warm
the block cache up to ``window`` bytes ahead.  The worker overlaps decompression and CRC
with the time nbdkit spends sending the previous reply (which does not hold the GIL).
Several interleaved runs (nbdcopy's workers, several connections) are tracked at once.
Correctness never depends on the worker: it only fills the cache through the same
single-flight path the request thread uses, and its errors are ignored (the request that
needs the block reports them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_RUNS = 16
MAX_JOBS = 8


class Readahead:
    def __init__(self, fetch: Callable[[int, int, int], None], window: int,
                 chunk: int, threads: int = 1) -> None:
        self._fetch = fetch
        self.window = window
        self.chunk = chunk
        self._runs: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._jobs: deque[tuple[int, int, int]] = deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"hxz-readahead-{i}",
                                          daemon=True) for i in range(max(1, threads))]
        for t in self._threads:
            t.start()

    def observe(self, sidx: int, start: int, end: int, limit: int) -> None:
        """Note a completed read of [start, end) in stream ``sidx`` of size ``limit``."""
        with self._cond:
            ahead = self._runs.pop((sidx, start), None)
            if ahead is None:
                ahead = end           # a new run: only prefetch once it proves sequential
            else:
                ahead = max(ahead, end)
                target = min(end + self.window, limit)
                while ahead < target and len(self._jobs) < MAX_JOBS:
                    n = min(self.chunk, target - ahead)
                    self._jobs.append((sidx, ahead, n))
                    ahead += n
                self._cond.notify()
            self._runs[(sidx, end)] = ahead
            while len(self._runs) > MAX_RUNS:
                self._runs.popitem(last=False)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                sidx, off, n = self._jobs.popleft()
            try:
                self._fetch(sidx, off, n)
            except Exception:  # noqa: BLE001 - the real request reports block errors
                pass

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._jobs.clear()
            self._cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)
