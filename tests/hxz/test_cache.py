"""The bounded LRU cache: bounds, eviction order, single-flight under threads."""

from __future__ import annotations

import threading
import time

import pytest

from hxz.cache import LRUCache


def test_capacity_bound_and_lru_order():
    c = LRUCache(10)
    c.put("a", b"xxxx")
    c.put("b", b"yyyy")
    assert c.get("a") == b"xxxx"          # refresh a: b is now least recent
    c.put("c", b"zzzz")
    assert c.used <= 10
    assert c.get("b") is None and c.get("a") == b"xxxx" and c.get("c") == b"zzzz"


def test_oversize_values_are_not_cached():
    c = LRUCache(3)
    c.put("big", b"1234")
    assert c.get("big") is None and c.used == 0


def test_replacing_a_key_keeps_accounting_exact():
    c = LRUCache(100)
    c.put("k", b"1" * 30)
    c.put("k", b"2" * 10)
    assert c.used == 10 and len(c) == 1


def test_get_or_load_is_single_flight():
    c = LRUCache(1 << 20)
    calls = []
    gate = threading.Event()

    def loader():
        calls.append(1)
        gate.wait(5)
        return b"v" * 100

    results = []
    threads = [threading.Thread(target=lambda: results.append(c.get_or_load("k", loader)))
               for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and results == [b"v" * 100] * 8


def test_failed_loader_lets_waiters_retry():
    c = LRUCache(1 << 20)
    attempts = []

    def bad():
        attempts.append(1)
        raise OSError("boom")

    with pytest.raises(OSError, match="boom"):
        c.get_or_load("k", bad)
    assert attempts == [1]
    assert c.get_or_load("k", lambda: b"ok") == b"ok"
    assert c._inflight == {}


def test_claim_many_and_settle_many():
    c = LRUCache(1 << 20)
    c.put("hit", b"h")
    states, ev = c.claim_many(["hit", "a", "b"])
    assert states[0] == b"h" and states[1] is None and states[2] is None
    states2, _ = c.claim_many(["a"])
    assert isinstance(states2[0], threading.Event)   # another "thread" must wait
    waiter_saw = []
    t = threading.Thread(target=lambda: (states2[0].wait(5), waiter_saw.append(c.get("a"))))
    t.start()
    c.settle_many([("a", b"A")], ["b"], ev)
    t.join(5)
    assert waiter_saw == [b"A"] and c.get("b") is None and c._inflight == {}


def test_concurrent_puts_respect_bound():
    c = LRUCache(5000)

    def work(n):
        for i in range(2000):
            c.put((n, i), b"x" * (i % 97 + 1))
            c.get((n, i - 3))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.used <= 5000
    assert c.used == sum(len(v) for v, _ in c._data.values())
