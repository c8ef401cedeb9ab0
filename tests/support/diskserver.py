"""The real http-disk-server as a child process on 127.0.0.1, for tests.

``start_server`` waits for the readiness line (nbdsuite.launch does the work);
``launch`` and ``wait_ready`` are the raw steps, for tests of refused starts and
of the readiness line itself. ``wait_for_log`` waits (bounded) for a line in its log;
``freeze`` stops a server (SIGSTOP) for sure; ``SyncTrace`` watches its device syncs
with strace.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nbdsuite.launch import READY, DiskServerProcess

REPO = Path(__file__).resolve().parents[2]

__all__ = ["READY", "REPO", "DiskServerProcess", "Reply", "SyncTrace", "freeze", "launch",
           "start_server", "wait_for_log", "wait_ready"]


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


@dataclass
class Reply:
    """One reply a server thread sent, and the syncs of the device that thread made since
    its previous reply (so: before this one)."""
    tid: int
    status: int
    syncs: list[str]


_SYNC_RE = re.compile(r"^(\d+)\s+(fsync|fdatasync)\(\d+<([^>]*)>")
_REPLY_RE = re.compile(r'^(\d+)\s+sendto\(\d+<[^>]*>, "HTTP/1\.[01] (\d{3}) ')


class SyncTrace:
    """``strace`` attached to a running server: which fsync/fdatasync calls on ``device``
    each server thread made before each reply it sent.

    strace stops a thread at every traced syscall and writes the line before letting it
    go on, so a sync that precedes a reply in a thread is written before that reply.
    """

    def __init__(self, pid: int, device: str | os.PathLike, workdir: Path,
                 timeout: float = 10.0) -> None:
        self.device = os.path.realpath(device)
        self.out = Path(workdir) / f"strace-{pid}.txt"
        self._err_path = Path(workdir) / f"strace-{pid}.stderr"
        self._err = open(self._err_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            ["strace", "-f", "-y", "-s", "24", "-e", "trace=fsync,fdatasync,sendto",
             "-o", str(self.out), "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=self._err)
        # "Process N attached with M threads": every existing thread is traced, and the
        # threads it starts later (one per connection) are followed (-f).
        end = time.monotonic() + timeout
        while b"attached" not in self._err_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > end:
                self.close()
                raise RuntimeError(f"strace did not attach to {pid}: "
                                   f"{self._err_path.read_text(errors='replace')}")
            time.sleep(0.02)

    def replies(self) -> list[Reply]:
        pending: dict[int, list[str]] = {}
        out: list[Reply] = []
        text = self.out.read_text(errors="replace") if self.out.exists() else ""
        for line in text.splitlines():
            if m := _SYNC_RE.match(line):
                if os.path.realpath(m.group(3)) == self.device:
                    pending.setdefault(int(m.group(1)), []).append(m.group(2))
            elif m := _REPLY_RE.match(line):
                tid = int(m.group(1))
                out.append(Reply(tid, int(m.group(2)), pending.pop(tid, [])))
        return out

    def wait_replies(self, n: int, timeout: float = 10.0) -> list[Reply]:
        """The first ``n`` replies, once strace has written them (a reply's line comes when
        its sendto returns, possibly after the client has read it)."""
        end = time.monotonic() + timeout
        while len(got := self.replies()) < n and time.monotonic() < end:
            time.sleep(0.02)
        assert len(got) >= n, f"{len(got)} replies traced, expected {n}: {got}"
        return got[:n]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()   # strace detaches and lets the server run on
            self.proc.wait(10)
        self._err.close()

    def __enter__(self) -> SyncTrace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
