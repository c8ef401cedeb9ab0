"""A bounded, thread-safe LRU with single-flight loading.

Used for decompressed blocks (keyed by (archive token, payload offset), so records that
share a payload through dedup share one entry, across streams and across a parent chain)
and for decoded index pages.  ``claim`` lets a batch loader (or the readahead worker)
announce the keys it is about to produce so that another thread needing the same key waits
for that result instead of decompressing the block a second time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRUCache:
    """Least-recently-used map bounded by the sum of ``sizeof(value)``."""

    def __init__(self, capacity: int, sizeof: Callable[[Any], int] = len) -> None:
        self.capacity = max(0, int(capacity))
        self._sizeof = sizeof
        self._lock = threading.Lock()
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._inflight: dict[Hashable, threading.Event] = {}
        self.used = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> Any:
        """Return the cached value (refreshing its LRU position) or None.

        Lock-free: each OrderedDict call is atomic under the GIL, and a concurrent
        eviction between the two calls only costs the LRU refresh.
        """
        item = self._data.get(key)
        if item is None:
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:
            pass
        return item[0]

    def _insert_locked(self, key: Hashable, value: Any) -> None:
        size = self._sizeof(value)
        if size > self.capacity:
            return      # never cache what would evict everything (the caller still has it)
        old = self._data.pop(key, None)
        if old is not None:
            self.used -= old[1]
        self._data[key] = (value, size)
        self.used += size
        while self.used > self.capacity:
            _, (_, sz) = self._data.popitem(last=False)
            self.used -= sz

    def known(self, key: Hashable) -> bool:
        """True when ``key`` is cached or being produced (lock-free: each membership test
        is atomic under the GIL, and a stale answer only costs a duplicate decode or a
        wait)."""
        return key in self._data or key in self._inflight

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._insert_locked(key, value)

    def claim(self, key: Hashable) -> tuple[Any, threading.Event | None]:
        """Try to become the producer of ``key``.

        Returns (value, None) on a hit; (None, None) when the caller now owns the key and
        must call ``fill`` or ``abandon``; (None, event) when another thread is producing
        it (wait on the event, then ``get`` again).
        """
        with self._lock:
            item = self._data.get(key)
            if item is not None:
                self._data.move_to_end(key)
                return item[0], None
            ev = self._inflight.get(key)
            if ev is not None:
                return None, ev
            self._inflight[key] = threading.Event()
            return None, None

    def fill(self, key: Hashable, value: Any) -> None:
        """Store the value of a claimed key and wake the threads waiting for it."""
        with self._lock:
            self._insert_locked(key, value)
            ev = self._inflight.pop(key, None)
        if ev is not None:
            ev.set()

    def abandon(self, key: Hashable) -> None:
        """Give up a claimed key (the load failed); waiters retry on their own."""
        with self._lock:
            ev = self._inflight.pop(key, None)
        if ev is not None:
            ev.set()

    def claim_many(self, keys: list[Hashable]) -> tuple[list[Any], threading.Event]:
        """Batch form of ``claim`` with one lock round and one Event for the whole batch.

        Returns (states, event): states[i] is the cached value, an Event to wait on (another
        thread is producing it), or None when the caller now owns keys[i] and must settle
        it with ``settle_many`` (which sets ``event`` for any waiter).
        """
        batch_ev = threading.Event()
        out: list[Any] = []
        with self._lock:
            data, inflight = self._data, self._inflight
            for key in keys:
                item = data.get(key)
                if item is not None:
                    data.move_to_end(key)
                    out.append(item[0])
                    continue
                ev = inflight.get(key)
                if ev is not None:
                    out.append(ev)
                else:
                    inflight[key] = batch_ev
                    out.append(None)
        return out, batch_ev

    def settle_many(self, filled: list[tuple[Hashable, Any]], abandoned: list[Hashable],
                    event: threading.Event) -> None:
        """Store produced values, release keys that failed, and wake the waiters."""
        with self._lock:
            inflight = self._inflight
            for key, value in filled:
                self._insert_locked(key, value)
                inflight.pop(key, None)
            for key in abandoned:
                inflight.pop(key, None)
        event.set()

    def get_or_load(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        """Return the value for ``key``, calling ``loader`` at most once across threads."""
        while True:
            value, ev = self.claim(key)
            if value is not None:
                return value
            if ev is None:
                break
            ev.wait()
            value = self.get(key)
            if value is not None:
                return value
            # The producer failed or the value was too large to cache: try ourselves.
        try:
            value = loader()
        except BaseException:
            self.abandon(key)
            raise
        self.fill(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.used = 0
