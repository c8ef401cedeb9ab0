"""A write the plugin gave up on never lands later, over a newer acknowledged write.

Two http-disk-servers share one disk file (a documented setup: a shared file or volume,
no DRBD fencing).  The active one is stopped with SIGSTOP while a write is on its way:
the write times out and completes on the other server, a newer write is acknowledged,
then the stopped server resumes with the old PUT still in its socket buffer.  The PUT
carries a Write-Deadline that has passed by then, so that server refuses it.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.multihttp.conftest import make_disk

SIZE = 1 << 20
BLOCK = 4096


def _pattern(n: int) -> bytes:
    return bytes([n]) * BLOCK


def test_stalled_replica_never_applies_a_stale_write(tmp_path, servers, nbdkit_proc):
    disk = tmp_path / "disk.img"
    make_disk(disk, SIZE)
    a = servers(disk)
    b = servers(disk)
    _stall_and_resume(a, b, disk, nbdkit_proc)


@pytest.mark.parametrize("skew", [0.0, 1.5])
def test_write_is_resent_only_after_deadline_plus_skew(tmp_path, fake, connect, skew):
    """The replica that stalls keeps its connection open (a partition, not a crash), so
    only its clock stands between the stale PUT and the disk: the plugin must not resend
    before the deadline it stamped, plus the skew the replicas' clocks may have."""
    disk_a, disk_b = tmp_path / "a.img", tmp_path / "b.img"
    make_disk(disk_a, SIZE)
    make_disk(disk_b, SIZE)
    a, b = fake(disk_a), fake(disk_b)
    h = connect([a.url, b.url], "timeout=1", "retries=0", f"clock-skew={skew}")
    a.mode, a.stall = "stall", 4.0
    h.pwrite(_pattern(7), 0)
    put_a = [i for i, r in enumerate(a.requests) if r[0] == "PUT"]
    put_b = [i for i, r in enumerate(b.requests) if r[0] == "PUT"]
    assert put_a and put_b, (a.requests, b.requests)
    sent_a = a.arrived[put_a[0]]
    deadline = float(a.requests[put_a[0]][2]["Write-Deadline"])
    assert sent_a <= deadline <= sent_a + 1.5, (sent_a, deadline)     # now + timeout
    assert "Write-Deadline" in b.requests[put_b[0]][2]
    # Resent no earlier than the deadline plus the skew (50 ms for the two clocks'
    # reading order; both are this host's clock).
    assert b.arrived[put_b[0]] >= deadline + skew - 0.05, (b.arrived[put_b[0]], deadline)
    assert disk_b.read_bytes()[:BLOCK] == _pattern(7)


def _wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """Until the kernel shows ``pid`` stopped (state T), so the next write really meets a
    stalled server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} not stopped {timeout} s after SIGSTOP")


def _stall_and_resume(a, b, disk: Path, nbdkit_proc, *params: str) -> None:
    """Write 1 on A; SIGSTOP A; write 2 (times out on A, lands on B); write 3
    (acknowledged); SIGCONT A; the disk must hold write 3."""
    nbdkit = nbdkit_proc([a.url, b.url], "timeout=2", "retries=0", "connect-timeout=1",
                         *params)
    h = nbdkit.handle()
    try:
        h.pwrite(_pattern(1), 0)                    # write 1, on A
        a.send_signal(signal.SIGSTOP)
        try:
            _wait_stopped(a.pid)
            done = threading.Event()
            errors: list[BaseException] = []

            def write2() -> None:
                try:
                    h.pwrite(_pattern(2), 0)        # times out on A, completes on B
                except BaseException as e:          # noqa: BLE001 - reported below
                    errors.append(e)
                done.set()
            t = threading.Thread(target=write2)
            t.start()
            assert done.wait(30), "write 2 did not complete within 30 s"
            t.join()
            assert not errors, errors
            h.pwrite(_pattern(3), 0)                # write 3, acknowledged by B
            assert h.pread(BLOCK, 0) == _pattern(3)
        finally:
            a.send_signal(signal.SIGCONT)
        # A now reads the PUT of write 2 still in its socket buffer; give it time to act.
        time.sleep(2)
        assert disk.read_bytes()[:BLOCK] == _pattern(3), "a stale write landed after failover"
        assert h.pread(BLOCK, 0) == _pattern(3)
    finally:
        h.shutdown()
    log = nbdkit.log_text()
    assert "waiting" in log and "deadline" in log, log
