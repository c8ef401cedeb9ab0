"""bench/cpumeter.py: the CPU-seconds bench_remote.py adds up into its 2-core bound must
count every process of a part (nginx's workers are its master's children) and every
thread of a child (nbdcopy's), and a run must stay bounded in time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import cpumeter  # noqa: E402

# Burns about SECS of CPU in a thread that ends before the process does.
BURN_THREAD = """
import sys, threading, time
def burn():
    end = time.thread_time() + float(sys.argv[1])
    while time.thread_time() < end:
        pass
t = threading.Thread(target=burn); t.start(); t.join()
"""


def _spin_tree(tmp_path: Path) -> subprocess.Popen:
    """A parent that starts a child that burns CPU until killed; the child's pid is
    written to tmp_path/'kid'."""
    kid = tmp_path / "kid"
    code = ("import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
            f"open({str(kid)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not (kid.exists() and kid.read_text()):
        assert time.monotonic() < deadline, "tree did not start"
        time.sleep(0.02)
    return proc


def test_tree_cpu_counts_the_descendants_busy_work(tmp_path):
    proc = _spin_tree(tmp_path)
    kid = int((tmp_path / "kid").read_text())
    try:
        assert kid in cpumeter.tree_pids(proc.pid)
        c0 = cpumeter.tree_cpu(proc.pid)
        time.sleep(0.6)
        grown = cpumeter.tree_cpu(proc.pid) - c0
        # The parent sleeps: all that CPU is the grandchild's, which a reading of the
        # parent alone would miss.  At least a third of a core on a loaded machine.
        assert grown >= 0.2, grown
        assert cpumeter.tree_cpu(proc.pid) - cpumeter.cpu_seconds(proc.pid) >= grown
    finally:
        os.kill(kid, 9)
        proc.kill()
        proc.wait(10)


def test_tree_cpu_of_a_gone_process_is_zero():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    assert cpumeter.tree_cpu(proc.pid) == 0.0


def test_run_child_counts_threads_that_ended_before_exit():
    wall, cpu = cpumeter.run_child([sys.executable, "-c", BURN_THREAD, "0.4"], timeout=60)
    assert cpu >= 0.4
    assert wall >= 0.3


def test_run_child_failure_and_timeout_are_raised():
    with pytest.raises(subprocess.CalledProcessError):
        cpumeter.run_child([sys.executable, "-c", "raise SystemExit(3)"], timeout=30)
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        cpumeter.run_child([sys.executable, "-c", "import time; time.sleep(60)"],
                           timeout=0.5)
    assert time.monotonic() - t0 < 10


def test_core_bound_and_the_bench_row():
    assert cpumeter.core_bound([1.0, 0.5, 0.5], 2) == 1.0
    with pytest.raises(ValueError):
        cpumeter.core_bound([1.0], 0)
    import bench_remote
    gib = bench_remote.GiB
    # Half a GiB copied: per GiB nbdkit 2 s, nginx 1 s, nbdcopy 1 s -> bound 2 s/GiB;
    # file= cost 0.4 + 0.1 CPU-seconds in all for it, so the CPU ratio is 0.5 / 2 = 0.25
    # in the first run and 0.6 / 2 = 0.3 in the second.
    cpu = {"nbdkit": [1.0, 1.0], "nginx": [0.5, 0.5], "nbdcopy": [0.5, 0.5]}
    local = {"nbdkit": [0.4, 0.5], "nginx": [0.0, 0.0], "nbdcopy": [0.1, 0.1]}
    cells = bench_remote.cpu_cells(cpu, local, gib // 2).split(" | ")
    assert cells == ["2.00 (2.00-2.00)", "1.00 (1.00-1.00)", "1.00 (1.00-1.00)",
                     "2.00 (2.00-2.00)", "0.28 (0.25-0.30)"]


def test_the_bench_decomposition_line_adds_up_the_measured_parts():
    import bench_remote
    gib = bench_remote.GiB

    def nbdkit(*xs):
        return {"nbdkit": list(xs)}
    # A quarter GiB image, an eighth GiB archive: per GiB, url= 4 s, transport 2 s, file= 3 s,
    # C file 1 s -> parts 2 + (3 - 1) = 4.
    cpu = {"hexz.py url=": nbdkit(1.0, 1.0), bench_remote.HTTP_ONLY: nbdkit(0.4, 0.6),
           "hexz.py file=": nbdkit(0.75), bench_remote.C_FILE: nbdkit(0.25)}
    line = bench_remote.decomposition("large", cpu, gib // 4, gib // 8)
    assert line == ("large: `url=` nbdkit CPU 4.00 s/GiB; its parts measured apart: "
                    "transport 2.00 (HTTP client only, moving the raw image: 2.0x the "
                    "archive's bytes) + archive work 2.00 (`file=` 3.00 - C file 1.00) = "
                    "4.00.")
