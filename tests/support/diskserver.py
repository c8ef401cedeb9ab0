"""Run the real http-disk-server as a child process on 127.0.0.1 and wait for readiness."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY = "Server ready!"


@dataclass
class ServerProc:
    proc: subprocess.Popen
    port: int
    url: str
    stderr_path: Path
    ready_line: str

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"server did not exit within {timeout} s of signal {sig}"
                                 ) from None


def launch(args: list[str], tmp_path: Path, name: str = "server") -> subprocess.Popen:
    err = open(tmp_path / f"{name}.stderr", "wb")
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


def start_server(args: list[str], tmp_path: Path, name: str = "server",
                 scheme: str = "http") -> ServerProc:
    proc = launch([*args, "--ip", "127.0.0.1", "--port", "0"], tmp_path, name)
    try:
        line = wait_ready(proc)
    except AssertionError:
        proc.kill()
        proc.wait(5)
        raise AssertionError(f"server failed to start: "
                             f"{(tmp_path / f'{name}.stderr').read_text()}") from None
    port = int(line.split(":")[-1].split("/")[0])
    return ServerProc(proc, port, f"{scheme}://127.0.0.1:{port}/", tmp_path / f"{name}.stderr",
                      line)
