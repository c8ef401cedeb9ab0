"""Starting the suite's servers as child processes and knowing when they are ready.

One place for what the demo, the benchmarks and the tests all do: start
``http-disk-server`` and wait for its ``Server ready!`` line, start nbdkit on a
Unix socket and wait for its pidfile, start nginx on a folder.  Every wait is
bounded, every server binds to 127.0.0.1, and a child's output goes to a log
file (a pipe nobody reads would eventually block it).
"""

from __future__ import annotations

import os
import pwd
import select
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path

READY = "Server ready!"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nbdkit_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for nbdkit's Python plugin: ``/usr/bin`` first on PATH.

    The embedded interpreter finds its standard library through the first
    ``python3`` on PATH; a pyenv or venv folder ahead of ``/usr/bin`` makes it
    load a foreign ``ssl.py`` and die with an undefined symbol.
    The Python packages this suite needs beyond Debian's (``blake3``) are found
    through the running venv, when it is one built on the same Python version as
    the embedded interpreter (the Makefile's ``.venv``).
    """
    env = dict(os.environ if base is None else base)
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != "/usr/bin"]
    env["PATH"] = os.pathsep.join(["/usr/bin", *rest])
    if sys.prefix != sys.base_prefix and sys.base_prefix == "/usr":
        site = sysconfig.get_path("purelib")
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if site not in paths:
            # The venv is built with --system-site-packages, so it holds only what
            # Debian lacks and shadows none of Debian's modules.
            env["PYTHONPATH"] = os.pathsep.join([*paths, site])
    return env


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen, sig: int, timeout: float) -> int:
    """Signal ``proc`` and wait; SIGKILL after ``timeout``. Returns the exit status,
    or raises TimeoutError when it needed the SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise TimeoutError(f"pid {proc.pid} did not exit within {timeout:g} s of signal "
                           f"{signal.Signals(sig).name}") from None


class DiskServerProcess:
    """``http-disk-server`` in a child process, ready once it printed ``Server ready!``.

    ``args`` are the server's own options (``--disk PATH`` ...); ``--ip 127.0.0.1``
    and ``--port 0`` are added unless given.  The ready line names the URL.
    """

    def __init__(self, args: Sequence[str], log: Path, *, timeout: float = 15.0,
                 cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None
                 ) -> None:
        argv = [sys.executable, "-m", "http_disk_server", *args]
        if "--ip" not in args:
            argv += ["--ip", "127.0.0.1"]
        if "--port" not in args:
            argv += ["--port", "0"]
        self.argv = argv
        self.log = Path(log)
        self._logf = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._logf,
                                     cwd=cwd, env=env, start_new_session=True)
        try:
            self.ready_line = self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        # "... on http://127.0.0.1:PORT/ Server ready!"
        self.url = self.ready_line.split(" on ", 1)[1].rsplit(" ", 2)[0]
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
        # stdout stays open until stop(): the server prints nothing more, and closing
        # it early could hand the server EPIPE on a late flush of the ready line.

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        buf = b""
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    if line.endswith(READY):
                        return line
            elif self.proc.poll() is not None:
                break
        raise RuntimeError(f"http-disk-server did not become ready (status "
                           f"{self.proc.poll()}): {self.log_text()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        if not self._logf.closed:
            self._logf.flush()
        return self.log.read_text(errors="replace")

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal and wait; returns the exit status (TimeoutError if it had to be killed)."""
        try:
            return _stop(self.proc, sig, timeout)
        finally:
            self._close_files()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._close_files()

    def _close_files(self) -> None:
        self._logf.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class NbdkitProcess:
    """``nbdkit -f -U SOCKET -P PIDFILE [options] PLUGIN [params]``, ready once the
    pidfile exists (nbdkit writes it after the socket listens)."""

    def __init__(self, workdir: Path, plugin_args: Sequence[str], *,
                 options: Sequence[str] = (), name: str = "nbdkit", timeout: float = 30.0,
                 cwd: str | os.PathLike | None = None, stdin: bytes | None = None,
                 pass_fds: Sequence[int] = ()) -> None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = str(workdir / f"{name}.sock")
        self.pidfile = workdir / f"{name}.pid"
        self.log = workdir / f"{name}.log"
        for p in (Path(self.socket), self.pidfile):
            p.unlink(missing_ok=True)
        self.argv = ["nbdkit", "-f", "--exit-with-parent", "-U", self.socket,
                     "-P", str(self.pidfile), *options, *plugin_args]
        self._logf = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.argv, cwd=cwd, stdout=self._logf,
                                     stderr=subprocess.STDOUT, env=nbdkit_env(),
                                     stdin=subprocess.PIPE if stdin is not None else
                                     subprocess.DEVNULL, pass_fds=tuple(pass_fds))
        if stdin is not None:
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()
        deadline = time.monotonic() + timeout
        while not (self.pidfile.exists() and os.path.exists(self.socket)):
            if self.proc.poll() is not None:
                self._logf.close()
                raise RuntimeError(f"nbdkit exited with status {self.proc.returncode}: "
                                   f"{self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"nbdkit did not write its pidfile within {timeout:g} s")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def uri(self) -> str:
        return self.export_uri("")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def export_uri(self, name: str) -> str:
        return f"nbd+unix:///{name}?socket={self.socket}"

    def log_text(self) -> str:
        if not self._logf.closed:
            self._logf.flush()
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit status (TimeoutError if it had to be killed).

        nbdkit 1.32 does not exit on SIGTERM while a client is connected: close
        clients first."""
        try:
            return _stop(self.proc, signal.SIGTERM, timeout)
        finally:
            self._logf.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._logf.close()


class NginxProcess:
    """nginx serving ``root`` read-only on 127.0.0.1.  With ``log_requests`` its access
    log records each request's status and body bytes (to count what crossed the wire)."""

    def __init__(self, root: Path, workdir: Path, *, log_requests: bool = True,
                 timeout: float = 10.0) -> None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.access_log = workdir / "nginx-access.log"
        temp = workdir / "nginx-tmp"
        temp.mkdir(exist_ok=True)
        access = f"access_log {self.access_log} bytes;" if log_requests else "access_log off;"
        conf = workdir / "nginx.conf"
        # Run as root, nginx would hand requests to workers running as "nobody", who
        # cannot read a private test folder: keep them as the caller's user.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    log_format bytes '$request_method $uri $status $body_bytes_sent "$http_range"';
    {access}
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        root {Path(root).resolve()};
        location / {{ }}
    }}
}}
""")
        self._out = open(workdir / "nginx.out", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)],
                                     stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start; see "
                                       f"{workdir / 'nginx-error.log'}") from None
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/"

    def requests(self) -> list[tuple[str, str, int, int]]:
        """(method, path, status, body bytes) of every request logged so far."""
        out = []
        if self.access_log.exists():
            for line in self.access_log.read_text().splitlines():
                method, path, status, sent = line.split(" ", 4)[:4]
                out.append((method, path, int(status), int(sent)))
        return out

    def stop(self) -> None:
        try:
            _stop(self.proc, signal.SIGQUIT, 10)   # graceful: finishes requests in flight
        except TimeoutError:
            pass
        finally:
            self._out.close()
