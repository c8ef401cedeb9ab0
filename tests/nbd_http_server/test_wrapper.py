"""nbd-http-server: kernel-side commands faked (pytest-subprocess), nbdkit real."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbd
import pytest

from nbd_http_server.options import parse_args
from nbd_http_server.wrapper import Wrapper
from tests.multihttp.conftest import REPO, make_disk

MiB = 1 << 20
SCRIPT = str(REPO / "scripts" / "nbd-http-server")


class Env:
    def __init__(self, tmp: Path, url: str):
        self.tmp = tmp
        self.dev = tmp / "dev"
        self.sys = tmp / "sys"
        self.dev.mkdir()
        self.sys.mkdir()
        self.url = url

    def add_devices(self, n: int) -> None:
        for i in range(n):
            (self.dev / f"nbd{i}").touch()
            q = self.sys / "block" / f"nbd{i}" / "queue"
            q.mkdir(parents=True, exist_ok=True)
            (q / "scheduler").write_text("[mq-deadline] none\n")

    def mark_connected(self, name: str) -> None:
        (self.sys / "block" / name / "pid").write_text("1\n")

    def options(self, name="vol1", *extra):
        return parse_args(["--socket-path", str(self.tmp / f"{name}.socket"),
                           "--nbd-name", name, "--urls", self.url, "--device-size", "2M",
                           "--dev-dir", str(self.dev), "--sys-dir", str(self.sys),
                           "--lock-file", str(self.tmp / "lock"), "--retries", "0",
                           *extra])


class Run:
    """The wrapper's main logic in a thread, with the stop 'signal' injected."""

    def __init__(self, opts):
        self.out = io.StringIO()
        self.w = Wrapper(opts, out=self.out)
        self.stop = threading.Event()
        self.rc: int | None = None
        self.t = threading.Thread(target=self._go, daemon=True)
        self.t.start()

    def _go(self):
        self.rc = self.w.run(self.stop)

    def wait_output(self, timeout=15) -> str:
        deadline = time.monotonic() + timeout
        while not self.out.getvalue() and self.t.is_alive():
            assert time.monotonic() < deadline, "no output"
            time.sleep(0.02)
        return self.out.getvalue()

    def finish(self, timeout=30) -> int:
        self.t.join(timeout)
        assert not self.t.is_alive(), "wrapper did not stop"
        return self.rc


@pytest.fixture
def env(tmp_path, fake):
    path = tmp_path / "disk.img"
    data = make_disk(path, 2 * MiB, seed=17)
    e = Env(tmp_path, fake(path).url)
    e.data = data
    return e


def _nbd_client_fakes(fp, env, connected: set[str]):
    """nbd-client -c answers from ``connected``; attach/detach update it."""
    def check(process):
        process.returncode = 0 if Path(process.args[2]).name in connected else 1

    def attach(process):
        name = Path(process.args[3]).name
        connected.add(name)
        env.mark_connected(name)

    def detach(process):
        name = Path(process.args[2]).name
        connected.discard(name)
        (env.sys / "block" / name / "pid").unlink(missing_ok=True)

    fp.register(["nbd-client", "-c", fp.any()], callback=check, occurrences=100)
    fp.register(["nbd-client", "-unix", fp.any()], callback=attach, occurrences=100)
    fp.register(["nbd-client", "-d", fp.any()], callback=detach, occurrences=100)
    fp.allow_unregistered(True)      # nbdkit itself runs for real


def _calls(fp, prefix):
    return [list(c) for c in fp.calls if list(c)[:len(prefix)] == prefix]


def test_attach_serve_and_sigterm_cleanup(env, fp):
    env.add_devices(3)
    env.mark_connected("nbd0")                 # busy: the kernel has a server on it
    connected = {"nbd0"}
    _nbd_client_fakes(fp, env, connected)
    opts = env.options()
    r = Run(opts)
    line = r.wait_output()
    assert line == f"NBD `{env.dev / 'nbd1'}` is now attached.\n"
    assert (env.sys / "block/nbd1/queue/scheduler").read_text() == "none"
    (attach,) = _calls(fp, ["nbd-client", "-unix"])
    assert attach[:4] == ["nbd-client", "-unix", opts.socket_path, str(env.dev / "nbd1")]
    assert attach[4:8] == ["-b", "512", "-N", "vol1"]
    assert attach[8] == "-t" and int(attach[9]) > 0
    # nbdkit really serves the export under its name on the socket.
    h = nbd.NBD()
    h.set_export_name("vol1")
    h.connect_unix(opts.socket_path)
    assert h.pread(4096, 4096) == env.data[4096:8192]
    h.shutdown()
    proc = r.w.proc
    r.stop.set()                                # SIGTERM
    assert r.finish() == 0
    assert _calls(fp, ["nbd-client", "-d"]) == [["nbd-client", "-d", str(env.dev / "nbd1")]]
    assert proc.poll() is not None
    assert not os.path.exists(opts.socket_path)
    assert not os.path.exists(opts.socket_path + ".pid")


def test_nbdkit_dying_detaches_and_fails(env, fp):
    env.add_devices(1)
    _nbd_client_fakes(fp, env, set())
    r = Run(env.options())
    assert "is now attached" in r.wait_output()
    r.w.proc.kill()
    assert r.finish() == 1
    assert _calls(fp, ["nbd-client", "-d"]) == [["nbd-client", "-d", str(env.dev / "nbd0")]]


def test_no_free_device(env, fp, capfd):
    env.add_devices(2)
    _nbd_client_fakes(fp, env, {"nbd0", "nbd1"})
    opts = env.options()
    r = Run(opts)
    assert r.finish() == 1
    assert r.out.getvalue() == ""
    assert "no free NBD device" in capfd.readouterr().err
    assert not _calls(fp, ["nbd-client", "-unix"])
    assert not os.path.exists(opts.socket_path)
    assert r.w.proc.poll() is not None


def test_modprobe_when_no_device(env, fp):
    _nbd_client_fakes(fp, env, set())
    fp.register(["modprobe", "nbd"], callback=lambda p: env.add_devices(2))
    r = Run(env.options())
    assert r.wait_output() == f"NBD `{env.dev / 'nbd0'}` is now attached.\n"
    assert _calls(fp, ["modprobe", "nbd"])
    r.stop.set()
    assert r.finish() == 0


def test_two_wrappers_never_share_a_device(env, fp):
    env.add_devices(2)
    _nbd_client_fakes(fp, env, set())
    r1, r2 = Run(env.options("vol1")), Run(env.options("vol2"))
    lines = {r1.wait_output(), r2.wait_output()}
    assert lines == {f"NBD `{env.dev / 'nbd0'}` is now attached.\n",
                     f"NBD `{env.dev / 'nbd1'}` is now attached.\n"}
    r1.stop.set()
    r2.stop.set()
    assert r1.finish() == 0 and r2.finish() == 0


def test_no_attach_end_to_end(env, tmp_path):
    """The real script: prints the URI, nbdcopy uses it, SIGTERM to the group cleans up."""
    sock = str(tmp_path / "na.socket")
    p = subprocess.Popen([sys.executable, SCRIPT, "--socket-path", sock, "--nbd-name", "vol9",
                          "--urls", env.url, "--device-size", "2M", "--no-attach"],
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        uri = p.stdout.readline().strip()
        assert uri == f"nbd+unix:///vol9?socket={sock}"
        out = tmp_path / "copy.img"
        subprocess.run(["nbdcopy", uri, str(out)], check=True, timeout=60)
        assert out.read_bytes() == env.data
        new = os.urandom(2 * MiB)
        (tmp_path / "new.img").write_bytes(new)
        subprocess.run(["nbdcopy", str(tmp_path / "new.img"), uri], check=True, timeout=60)
        os.killpg(p.pid, signal.SIGTERM)          # what the storage driver does
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not os.path.exists(sock) and not os.path.exists(sock + ".pid")
    assert (tmp_path / "disk.img").read_bytes() == new


def test_bad_parameters_stop_before_nbdkit(env, fp, capfd):
    fp.allow_unregistered(True)
    opts = env.options("vol1", "--timeout", "-3")
    r = Run(opts)
    assert r.finish() == 1
    err = capfd.readouterr().err
    assert "timeout" in err and len(err.strip().splitlines()) == 1
    assert r.w.proc is None
    assert not fp.calls or all(c[0] != "nbd-client" for c in map(list, fp.calls))


def _timeout(process):
    raise subprocess.TimeoutExpired(process.args, 60)


@pytest.mark.parametrize("failure", ["exit 1", "busy", "timeout"])
def test_failed_attach_prints_no_ready_line_and_cleans_up(env, fp, capfd, failure):
    """The readiness line is printed only after nbd-client succeeded: storage drivers wait
    for it and then use the device."""
    env.add_devices(1)
    connected: set[str] = set()

    def check(process):
        process.returncode = 0 if Path(process.args[2]).name in connected else 1
    fp.register(["nbd-client", "-c", fp.any()], callback=check, occurrences=10)
    if failure == "timeout":
        fp.register(["nbd-client", "-unix", fp.any()], callback=_timeout)
    else:
        stderr = {"exit 1": "Socket failed: Connection refused",
                  "busy": "Error: Device or resource busy"}[failure]
        fp.register(["nbd-client", "-unix", fp.any()], returncode=1, stderr=stderr)
    fp.register(["nbd-client", "-d", fp.any()], occurrences=10)
    fp.allow_unregistered(True)                  # nbdkit runs for real
    opts = env.options()
    r = Run(opts)
    assert r.finish() == 1
    assert "is now attached" not in r.out.getvalue() and r.out.getvalue() == ""
    err = capfd.readouterr().err
    assert "nbd-client" in err and str(env.dev / "nbd0") in err, err
    assert r.w.proc is not None and r.w.proc.poll() is not None      # nbdkit stopped
    assert not os.path.exists(opts.socket_path)
    assert not os.path.exists(opts.socket_path + ".pid")
    detached = _calls(fp, ["nbd-client", "-d"])
    # A timed-out attach may have half-attached the device: it is detached on the way out.
    assert detached == ([["nbd-client", "-d", str(env.dev / "nbd0")]]
                        if failure == "timeout" else [])
