"""CPU time of the processes a copy runs through, and the wall time it bounds.

On a machine with few cores a loopback copy is CPU-bound: the client (nbdcopy), the
server (nbdkit) and the origin (nginx) share the cores, so no scheduling can finish a
copy faster than their CPU-seconds added up and divided by the number of cores.  These
helpers measure each part's CPU-seconds for one run:

* a live process and its descendants (nginx's master and workers) from /proc, by
  ``nbdsuite.launch.cpu_seconds``;
* a child run to completion (nbdcopy) from the kernel's accounting at reaping
  (``os.wait4``), which also counts threads that exited before the end.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from nbdsuite.launch import cpu_seconds


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its live descendants (from /proc/PID/task/TID/children)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for tid in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
            except FileNotFoundError:
                continue
            todo.extend(int(k) for k in kids)
    return out


def tree_cpu(pid: int) -> float:
    """User plus system CPU-seconds used so far by ``pid`` and its live descendants
    (a process that exits between the listing and the read counts 0)."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += cpu_seconds(p)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def run_child(argv: Sequence[str], timeout: float) -> tuple[float, float]:
    """Run ``argv`` to completion; returns (wall seconds, its user+system CPU-seconds,
    all its threads).  Raises subprocess.CalledProcessError on a non-zero exit and
    subprocess.TimeoutExpired (after killing it) past ``timeout``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv))
    # Waited for through a pidfd (bounded) and reaped by wait4, which returns the
    # child's resource usage; Popen.wait would reap it and lose that.
    fd = os.pidfd_open(proc.pid)
    try:
        if not select.select([fd], [], [], timeout)[0]:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise subprocess.TimeoutExpired(list(argv), timeout)
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        os.close(fd)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, list(argv))
    return wall, ru.ru_utime + ru.ru_stime


def core_bound(cpu_seconds: Sequence[float], cores: int = 2) -> float:
    """The shortest wall time in which ``cores`` cores can supply the CPU-seconds of all
    the parts of one copy, with perfect overlap and nothing else running."""
    if cores < 1:
        raise ValueError("cores must be >= 1")
    return sum(cpu_seconds) / cores
