"""nbd-http-server: serve an HTTP-replicated disk as /dev/nbdX (or as an NBD URI).

    nbd-http-server --socket-path /run/<vol>.socket --nbd-name <vol>
        --urls http://ip:port,... --device-size N [--no-attach] [...]

Steps: start nbdkit (multihttp plugin) in the foreground on the Unix socket
with the export name; wait for its pidfile (no log scraping); pick a free
/dev/nbdX under a lock; attach it with nbd-client; print
``NBD `/dev/nbdX` is now attached.``; then supervise until SIGTERM/SIGINT
(detach, stop nbdkit, clean up, exit 0) or nbdkit dies (detach, exit 1).

Paths and the stop signal are injectable so tests can drive it in-process.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from typing import TextIO
from urllib.parse import quote

from multihttp import params as mparams

from .options import Options, is_script


class WrapperError(Exception):
    """A one-line reason to stop."""


def _log(msg: str) -> None:
    print(f"nbd-http-server: {msg}", file=sys.stderr, flush=True)


def nbd_devices(dev_dir: str) -> list[str]:
    """``nbdN`` device paths in ``dev_dir``, by number."""
    try:
        names = [n for n in os.listdir(dev_dir) if re.fullmatch(r"nbd\d+", n)]
    except FileNotFoundError:
        return []
    return [os.path.join(dev_dir, n) for n in sorted(names, key=lambda n: int(n[3:]))]


class Wrapper:
    def __init__(self, o: Options, out: TextIO | None = None) -> None:
        self.o = o
        self.out = out if out is not None else sys.stdout
        self.pidfile = o.pidfile or o.socket_path + ".pid"
        self.proc: subprocess.Popen | None = None
        self.device: str | None = None
        self.params: mparams.Params | None = None    # set by check_params()

    # -- nbdkit ----------------------------------------------------------

    def nbdkit_command(self) -> list[str]:
        cmd = [self.o.nbdkit, "-f", "-U", self.o.socket_path, "-P", self.pidfile,
               "-e", self.o.nbd_name, "--exit-with-parent", "--threads", str(self.o.threads)]
        if self.o.read_only:
            cmd.append("-r")
        if self.o.verbose:
            cmd.append("-v")
        plugin = ["python", self.o.plugin] if is_script(self.o.plugin) else [self.o.plugin]
        args = mparams.plugin_args(self.params or self.check_params())
        if self.o.password_file is not None:
            # +FILE: the password never appears on a command line.
            args.append(f"password=+{self.o.password_file}")
        return cmd + plugin + args

    def _remove_stale_socket(self) -> None:
        path = self.o.socket_path
        if not os.path.exists(path):
            return
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            try:
                s.connect(path)
            except OSError:
                os.unlink(path)     # nobody listens: left over from a crash
                return
        raise WrapperError(f"{path}: another server is listening on this socket")

    def start_nbdkit(self, stop: threading.Event) -> None:
        if is_script(self.o.plugin) and not os.path.exists(self.o.plugin):
            raise WrapperError(f"multihttp plugin not found at {self.o.plugin} (use --plugin)")
        self._remove_stale_socket()
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
        # Own session: a SIGTERM to our process group must not kill nbdkit
        # before the device is detached (the kernel flushes on detach).
        # --exit-with-parent still ends it if we die.
        self.proc = subprocess.Popen(self.nbdkit_command(), stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + self.o.start_timeout
        # nbdkit writes the pidfile only once the socket listens.
        while not (os.path.exists(self.pidfile) and os.path.getsize(self.pidfile) > 0):
            if self.proc.poll() is not None:
                raise WrapperError(f"nbdkit exited with status {self.proc.returncode} "
                                   "during startup")
            if stop.is_set():
                raise WrapperError("stopped during startup")
            if time.monotonic() > deadline:
                raise WrapperError(f"nbdkit not ready after {self.o.start_timeout:g} s")
            time.sleep(0.02)

    def stop_nbdkit(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    # -- the kernel device -----------------------------------------------

    def ensure_module(self) -> None:
        if nbd_devices(self.o.dev_dir):
            return
        try:
            r = subprocess.run(["modprobe", "nbd"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise WrapperError(f"modprobe nbd failed: {e}") from None
        if r.returncode != 0:
            raise WrapperError(f"modprobe nbd failed: {r.stderr.strip() or r.returncode}")
        deadline = time.monotonic() + 3
        while not nbd_devices(self.o.dev_dir):   # udev creates the nodes
            if time.monotonic() > deadline:
                raise WrapperError(f"no nbd devices in {self.o.dev_dir} after modprobe nbd")
            time.sleep(0.05)

    def device_free(self, dev: str) -> bool:
        name = os.path.basename(dev)
        if os.path.exists(os.path.join(self.o.sys_dir, "block", name, "pid")):
            return False         # the kernel has a server connected
        try:
            # O_EXCL on a block device fails with EBUSY while it is mounted
            # or held by another exclusive opener.
            fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
        except OSError as e:
            if e.errno in (errno.EBUSY, errno.EACCES, errno.EPERM, errno.ENXIO):
                return False
            raise
        os.close(fd)
        try:
            r = subprocess.run(["nbd-client", "-c", dev], capture_output=True, text=True,
                               timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 1     # 0: connected, 1: not connected, else: error

    def check_params(self) -> mparams.Params:
        """Validate the plugin parameters here, for a clear error before nbdkit runs.

        The password file is only checked for readability: its content is
        read by the plugin, never by the wrapper."""
        p = mparams.Params()
        try:
            for key, value in self.o.plugin_pairs():
                mparams.apply(p, key, value)
            if self.o.password_file is not None:
                if self.o.user is None:
                    raise mparams.ParamError("--password-file given without --user")
                if not os.access(self.o.password_file, os.R_OK):
                    raise mparams.ParamError(f"--password-file {self.o.password_file!r} "
                                             "is not readable")
            mparams.finish(p)
        except mparams.ParamError as e:
            raise WrapperError(str(e)) from None
        self.params = p
        return p

    def nbd_timeout(self) -> int:
        if self.o.nbd_timeout is not None:
            return self.o.nbd_timeout
        # Longer than the plugin's own bound, so the plugin answers EIO
        # before the kernel gives up on the request.
        return math.ceil(mparams.worst_case_seconds(self.params or self.check_params())) + 10

    def attach(self) -> str:
        self.ensure_module()
        os.makedirs(os.path.dirname(self.o.lock_file) or ".", exist_ok=True)
        with open(self.o.lock_file, "a") as lock:
            # The lock covers choose + attach, so two wrappers never pick the
            # same free device.
            deadline = time.monotonic() + 30
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WrapperError(f"{self.o.lock_file}: lock held for 30 s") from None
                    time.sleep(0.05)
            for dev in nbd_devices(self.o.dev_dir):
                if not self.device_free(dev):
                    continue
                cmd = ["nbd-client", "-unix", self.o.socket_path, dev, "-b", "512",
                       "-N", self.o.nbd_name, "-t", str(self.nbd_timeout())]
                try:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                except subprocess.TimeoutExpired:
                    self.device = dev      # it may be half attached: detach on the way out
                    raise WrapperError(f"nbd-client did not attach {dev} within 60 s") from None
                if r.returncode != 0:
                    raise WrapperError(f"nbd-client failed to attach {dev}: "
                                       f"{(r.stderr or r.stdout).strip() or r.returncode}")
                self.device = dev
                return dev
        raise WrapperError(f"no free NBD device in {self.o.dev_dir}")

    def set_scheduler(self, dev: str) -> None:
        path = os.path.join(self.o.sys_dir, "block", os.path.basename(dev), "queue",
                            "scheduler")
        try:
            with open(path, "w") as f:
                f.write("none")
        except OSError as e:
            _log(f"cannot set the scheduler of {dev} to none: {e.strerror}")

    def detach(self) -> None:
        if self.device is None:
            return
        dev, self.device = self.device, None
        try:
            r = subprocess.run(["nbd-client", "-d", dev], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                _log(f"nbd-client -d {dev} failed: {(r.stderr or r.stdout).strip()}")
        except (OSError, subprocess.TimeoutExpired) as e:
            _log(f"nbd-client -d {dev} failed: {e}")

    def uri(self) -> str:
        return f"nbd+unix:///{quote(self.o.nbd_name, safe='')}?socket=" \
               f"{quote(self.o.socket_path, safe='/')}"

    # -- the whole run ---------------------------------------------------

    def cleanup(self) -> None:
        self.detach()
        self.stop_nbdkit()
        for path in (self.o.socket_path, self.pidfile):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def run(self, stop: threading.Event) -> int:
        """Everything up to the end; returns the exit status."""
        try:
            self.check_params()
            self.start_nbdkit(stop)
            if self.o.no_attach:
                print(self.uri(), file=self.out, flush=True)
            else:
                dev = self.attach()
                self.set_scheduler(dev)
                print(f"NBD `{dev}` is now attached.", file=self.out, flush=True)
            while not stop.wait(0.1):
                if self.proc.poll() is not None:
                    _log(f"nbdkit exited with status {self.proc.returncode}; detaching")
                    return 1
            return 0
        except WrapperError as e:
            _log(str(e))
            return 1
        finally:
            self.cleanup()
