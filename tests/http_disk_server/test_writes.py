"""WriteGate in process: bounded body buffers, and shutdown waiting for device writes."""

from __future__ import annotations

import threading

import pytest

from http_disk_server.errors import Busy
from http_disk_server.writes import WriteGate


def test_buffer_slots_are_bounded():
    gate = WriteGate(max_writers=2)
    with gate.buffer_slot(True, 1.0), gate.buffer_slot(True, 1.0):
        with pytest.raises(Busy), gate.buffer_slot(True, 0.05):
            pass
        with gate.buffer_slot(False, 0.05):      # small bodies need no slot
            pass
    with gate.buffer_slot(True, 0.05):           # released
        pass


def test_close_waits_for_writes_then_refuses_new_ones():
    gate = WriteGate(max_writers=1)
    inside, release = threading.Event(), threading.Event()

    def writer() -> None:
        with gate.device_write():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    assert inside.wait(10)
    assert gate.close(0.05) is False             # still writing after the timeout
    release.set()
    t.join(10)
    with pytest.raises(Busy, match="shutting down"), gate.device_write():
        pass
    assert gate.close(1.0) is True
