"""NBD plumbing for the hexz tests: an nbdkit server fixture and a libnbd client with deadlines.

libnbd's Python binding has no per-call timeout, and a client that connects to a socket whose
plugin process died may wait forever (nbdkit 1.32 quirk). So every client operation here is
issued with the aio_* API and driven with poll() against a deadline: a hung server turns into a
TimeoutError naming the operation instead of a stuck test run.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nbd

from nbdsuite.launch import NbdkitProcess

REPO = Path(__file__).resolve().parents[2]
PLUGIN = str(REPO / "plugins" / "hexz.py")
DEFAULT_TIMEOUT = 30.0


def plugin_argv(file: str | os.PathLike | None, *params: str) -> list[str]:
    """`python PLUGIN file=... params...` part of an nbdkit command line."""
    args = ["python", PLUGIN]
    if file is not None:
        args.append(f"file={file}")
    args.extend(params)
    return args


def collect_extents(got: list[tuple[int, int, int]], metacontext: str, off: int,
                     entries: list[int], err: object) -> int:
    """libnbd extent callback: append base:allocation (start, length, flags) triples."""
    if metacontext == nbd.CONTEXT_BASE_ALLOCATION:
        p = off
        for i in range(0, len(entries), 2):
            got.append((p, entries[i], entries[i + 1]))
            p += entries[i]
    return 0


class Client:
    """One libnbd connection; every call is bounded by `timeout` seconds."""

    def __init__(
        self,
        *,
        socket: str | None = None,
        argv: Sequence[str] | None = None,
        export: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        strict_bounds: bool = True,
    ) -> None:
        self.timeout = timeout
        self.h = nbd.NBD()
        self.h.set_export_name(export)
        self.h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
        if not strict_bounds:
            # let out-of-range requests reach the server, to test that *it* refuses them
            self.h.set_strict_mode(self.h.get_strict_mode() & ~nbd.STRICT_BOUNDS)
        if socket is not None:
            self.h.aio_connect_unix(socket)
        elif argv is not None:
            self.h.aio_connect_command(list(argv))
        else:
            raise ValueError("socket or argv required")
        deadline = time.monotonic() + timeout
        while self.h.aio_is_connecting():
            self._tick(deadline, "connect")
        if not self.h.aio_is_ready():
            raise ConnectionError(f"NBD connection not ready (export {export!r})")

    def _tick(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"NBD {what} did not finish within {self.timeout} s")
        self.h.poll(100)

    def _wait(self, cookie: int, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.h.aio_command_completed(cookie):
            self._tick(deadline, what)

    @property
    def size(self) -> int:
        return self.h.get_size()

    def pread(self, count: int, offset: int) -> bytes:
        buf = nbd.Buffer(count)
        cookie = self.h.aio_pread(buf, offset)
        self._wait(cookie, f"pread({count}, {offset})")
        return bytes(buf.to_bytearray())

    def pwrite(self, data: bytes, offset: int) -> None:
        cookie = self.h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), offset)
        self._wait(cookie, f"pwrite({len(data)}, {offset})")

    def block_status(self, count: int, offset: int) -> list[tuple[int, int, int]]:
        """Extents (start, length, flags) covering [offset, offset+count), asking again
        where the server answered for a shorter range."""
        out: list[tuple[int, int, int]] = []
        pos, end = offset, offset + count
        while pos < end:
            got: list[tuple[int, int, int]] = []
            cb = functools.partial(collect_extents, got)
            count = min(end - pos, 1 << 31)  # the request length is a u32
            cookie = self.h.aio_block_status(count, pos, cb)
            self._wait(cookie, f"block_status({count}, {pos})")
            if not got or got[0][0] != pos or got[0][1] == 0:
                raise AssertionError(f"bad block status reply at {pos}: {got[:4]}")
            for start, length, flags in got:
                if start >= end:
                    break
                length = min(length, end - start)
                out.append((start, length, flags))
            pos = out[-1][0] + out[-1][1]
        return out

    def close(self) -> None:
        try:
            if self.h.aio_is_ready():
                self.h.aio_disconnect()
                deadline = time.monotonic() + 5
                while not self.h.aio_is_closed() and not self.h.aio_is_dead():
                    if time.monotonic() > deadline:
                        break
                    self.h.poll(100)
        except nbd.Error:
            pass
        # libnbd 1.14's Python handle has no close(): dropping it frees the connection
        del self.h

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Server(NbdkitProcess):
    """A long-running nbdkit serving one archive with plugins/hexz.py."""

    def __init__(
        self,
        workdir: Path,
        file: str | os.PathLike | None,
        *params: str,
        cwd: str | os.PathLike | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, plugin_argv(file, *params), options=extra, cwd=cwd)
        self.sock = self.socket

    def client(self, export: str = "", **kw: object) -> Client:
        return Client(socket=self.sock, export=export, **kw)  # type: ignore[arg-type]

    def stop(self) -> int:
        """SIGTERM, then require a prompt exit (a graceful shutdown is part of the contract)."""
        try:
            return super().stop(15)
        except TimeoutError:
            raise AssertionError("nbdkit did not exit within 15 s of SIGTERM") from None


def list_exports(sock: str, timeout: float = 60) -> list[str]:
    """Export names from NBD_OPT_LIST (libnbd opt mode), bounded by `timeout` via a thread."""
    import threading

    result: list[str] = []
    failure: list[BaseException] = []

    def work() -> None:
        h = nbd.NBD()
        try:
            h.set_opt_mode(True)
            h.connect_unix(sock)
            h.opt_list(lambda name, description: result.append(name) or 0)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            # keep no frame (and so no handle) alive: an open connection would stop
            # nbdkit from exiting on SIGTERM
            failure.append(e.with_traceback(None))
        finally:
            try:
                h.opt_abort()
            except nbd.Error:
                pass
            del h

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"NBD_OPT_LIST did not finish within {timeout} s")
    if failure:
        raise failure[0]
    return result


def run_tool(argv: Sequence[str], timeout: float = 120,
             **kw: object) -> subprocess.CompletedProcess:
    """Run a client tool (nbdcopy, nbdinfo, qemu-img) with a bound on its run time."""
    return subprocess.run(list(argv), capture_output=True, timeout=timeout,
                          **kw)  # type: ignore[call-overload]


def try_start(
    tmp_path: Path, file: str | os.PathLike | None, *params: str, cwd: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess:
    """Start nbdkit with `--run true` on a private socket: exit status 0 means the plugin
    accepted the configuration and served; non-zero means it refused to start. A start that
    hangs raises AssertionError after `timeout` seconds (nbdkit is killed)."""
    # A fresh socket path every time: nbdkit 1.32 leaves the socket file behind after a
    # successful --run, and reusing the path would fail with "Address already in use",
    # which must not be mistaken for the plugin refusing.
    fd, name = tempfile.mkstemp(prefix="try-", suffix=".sock", dir=tmp_path)
    os.close(fd)
    os.unlink(name)
    argv = ["nbdkit", "-U", name, *plugin_argv(file, *params), "--run", "true"]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"nbdkit neither started nor refused within {timeout} s: "
                             f"{' '.join(argv)}") from None
    finally:
        Path(name).unlink(missing_ok=True)


def assert_one_clear_line(proc: subprocess.CompletedProcess, *must_contain: str) -> str:
    """A refusal must be a non-zero exit with a short message naming the problem, and no
    Python traceback wall. Returns stderr for further checks."""
    err = proc.stderr
    assert proc.returncode != 0, f"nbdkit started although it should refuse; stderr: {err!r}"
    assert "Traceback (most recent call last)" not in err, f"traceback wall:\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 3, f"expected one clear error line, got {len(lines)}:\n{err}"
    for s in must_contain:
        assert s in err, f"{s!r} not named in the refusal: {err!r}"
    return err
