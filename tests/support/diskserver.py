"""The real http-disk-server as a child process on 127.0.0.1, for tests.

``start_server`` waits for the readiness line (nbdsuite.launch does the work);
``launch`` and ``wait_ready`` are the raw steps, for tests of refused starts and
of the readiness line itself. ``wait_for_log`` waits (bounded) for a line in its log;
``freeze`` stops a server (SIGSTOP) for sure.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from nbdsuite.launch import READY, DiskServerProcess

REPO = Path(__file__).resolve().parents[2]

__all__ = ["READY", "REPO", "DiskServerProcess", "freeze", "launch", "start_server",
           "wait_for_log", "wait_ready"]


def start_server(args: list[str], tmp_path: Path, name: str = "server") -> DiskServerProcess:
    """A server on 127.0.0.1 and a free port, ready; its stderr goes to ``NAME.stderr``."""
    return DiskServerProcess(args, tmp_path / f"{name}.stderr", cwd=REPO)


def launch(args: list[str], tmp_path: Path, name: str = "server") -> subprocess.Popen:
    """Start the server without waiting for anything (stdout is a pipe)."""
    err = open(tmp_path / f"{name}.stderr", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "http_disk_server", *args],
                            stdout=subprocess.PIPE, stderr=err, cwd=REPO,
                            start_new_session=True)


def wait_ready(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """Read stdout until the readiness line; fail if the process exits or times out."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if line.endswith(READY):
                    return line
        elif proc.poll() is not None:
            break
    raise AssertionError(f"no readiness line; stdout={buf!r}, rc={proc.poll()}")


def freeze(pid: int, timeout: float = 10.0) -> None:
    """SIGSTOP ``pid`` and return once every one of its threads is stopped.

    kill() returns before the stop takes effect: one thread takes the signal and then
    stops the others, which on a loaded machine can take milliseconds, during which a
    thread that is woken by new socket data still runs and may serve a whole request.
    """
    os.kill(pid, signal.SIGSTOP)
    end = time.monotonic() + timeout
    while True:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                # "tid (comm) S ...": the state follows the last ")".
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue                       # a thread that just ended
        if states and all(state in "Tt" for state in states):
            return
        assert time.monotonic() < end, f"pid {pid} not stopped: thread states {states}"
        time.sleep(0.001)


def wait_for_log(server: DiskServerProcess, needle: str, count: int = 1,
                 timeout: float = 15.0) -> list[str]:
    """Bounded wait until ``count`` lines of the server's stderr contain ``needle``."""
    end = time.monotonic() + timeout
    while True:
        lines = [line for line in server.log_text().splitlines() if needle in line]
        if len(lines) >= count or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert len(lines) >= count, f"{needle!r} not logged {count} times: " \
        f"{server.log_text()[-2000:]}"
    return lines
