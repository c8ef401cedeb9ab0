"""Waiting for a DRBD device that another host holds as Primary.

Storage drivers start the server on every replica host. On a host where DRBD is
Secondary while a peer is Primary, opening the device for writing fails with
EROFS (or EMEDIUMTYPE when auto-promote gives up). The server must still
announce readiness, answer 503 meanwhile, log why, and retry once a second
without spinning until this host can open the device.

Everything that touches the system (open, stat, the drbdsetup command) comes
from a ``System``, so the logic is testable in-process with fakes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DRBD_MAJOR = 147
# Errors that mean "another node is Primary / this node may not write now".
NOT_PRIMARY_ERRNOS = frozenset({errno.EROFS, errno.EMEDIUMTYPE})
_BY_RES_RE = re.compile(r"/dev/drbd/by-res/([^/]+)(?:/\d+)?")

log = logging.getLogger("http_disk_server.drbd")


@dataclass(frozen=True)
class System:
    """The calls into the machine that opening a device needs; tests pass fakes."""

    open: Callable[[str, int], int] = os.open
    stat: Callable[[str], Any] = os.stat
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run


#: The real machine.
LOCAL = System()


def drbd_minor(path: str, stat_fn: Callable[[str], Any] = os.stat) -> int | None:
    """The DRBD minor number of ``path``, or None when it is not a DRBD device."""
    try:
        st = stat_fn(path)
    except OSError:
        return None
    if stat.S_ISBLK(st.st_mode) and os.major(st.st_rdev) == DRBD_MAJOR:
        return os.minor(st.st_rdev)
    return None


def resource_of(path: str) -> str | None:
    """The resource name in a /dev/drbd/by-res/<res>/<vol> path, else None."""
    m = _BY_RES_RE.fullmatch(path)
    return m.group(1) if m else None


def primary_peers(resource: str | None, minor: int | None,
                  run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                  timeout: float = 5.0) -> tuple[str | None, list[str]]:
    """Ask ``drbdsetup status --json`` which peers are Primary.

    Returns (resource name, primary peer names). Raises OSError or ValueError
    with a one-line reason when drbdsetup cannot answer.
    """
    cmd = ["drbdsetup", "status"] + ([resource] if resource else []) + ["--json"]
    try:
        proc = run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as e:
        raise OSError(errno.ENOENT, "drbdsetup is not installed") from e
    except subprocess.TimeoutExpired as e:
        raise OSError(errno.ETIMEDOUT, f"{' '.join(cmd)} timed out") from e
    if proc.returncode != 0:
        first = (proc.stderr or "").strip().splitlines()[:1]
        raise OSError(errno.EIO, f"{' '.join(cmd)} exited with {proc.returncode}"
                      + (f": {first[0]}" if first else ""))
    try:
        resources = json.loads(proc.stdout)
    except ValueError as e:
        raise ValueError(f"{' '.join(cmd)} printed invalid JSON: {e}") from e
    for res in resources if isinstance(resources, list) else []:
        if resource is None:
            minors = {d.get("minor") for d in res.get("devices", [])}
            if minor not in minors:
                continue
        elif res.get("name") != resource:
            continue
        peers = [c.get("name", "?") for c in res.get("connections", [])
                 if c.get("peer-role") == "Primary"]
        return res.get("name"), peers
    raise ValueError(f"{' '.join(cmd)} does not list the resource of this device")


def why_not_writable(path: str, minor: int | None,
                     run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> str:
    """One line explaining why the DRBD device cannot be opened here."""
    resource = resource_of(path)
    try:
        name, peers = primary_peers(resource, minor, run=run)
    except (OSError, ValueError) as e:
        return f"the DRBD device is read-only here and drbdsetup could not say why ({e})"
    if peers:
        return f"DRBD resource {name} is Primary on {', '.join(peers)}"
    return f"DRBD resource {name} is read-only here and no peer is Primary"


@dataclass
class DeviceWaiter:
    """Opens the device, or keeps retrying once a second while DRBD says no.

    ``open_device`` returns a ready backend or raises OSError. ``on_open`` is
    called once with the backend when an open succeeds.
    """

    path: str
    open_device: Callable[[], Any]
    on_open: Callable[[Any], None]
    stop: threading.Event
    system: System = LOCAL
    interval: float = 1.0
    on_wait: Callable[[str], None] | None = None
    reason: str | None = field(default=None, init=False)  # why the device is not open yet
    thread: threading.Thread | None = field(default=None, init=False)

    def first_attempt(self) -> bool:
        """Try once, synchronously. True when open; False when waiting for DRBD.

        Any other failure (missing path, permission, a non-DRBD read-only file)
        propagates, because retrying would not help and startup should fail.
        """
        try:
            backend = self.open_device()
        except OSError as e:
            minor = drbd_minor(self.path, self.system.stat)
            if minor is None or e.errno not in NOT_PRIMARY_ERRNOS:
                raise
            self._note(why_not_writable(self.path, minor, self.system.run), e)
            self.thread = threading.Thread(target=self._retry_loop, name="drbd-wait",
                                           daemon=True)
            self.thread.start()
            return False
        self.on_open(backend)
        return True

    def _note(self, reason: str, err: OSError) -> None:
        if reason != self.reason:
            log.warning("cannot open %s yet: %s (%s); answering 503 and retrying every %g s",
                        self.path, reason, os.strerror(err.errno or errno.EIO), self.interval)
        self.reason = reason
        if self.on_wait is not None:
            self.on_wait(reason)

    def _retry_loop(self) -> None:
        # Event.wait sleeps the whole interval unless shutdown starts: no spinning.
        while not self.stop.wait(self.interval):
            try:
                backend = self.open_device()
            except OSError as e:
                if e.errno in NOT_PRIMARY_ERRNOS:
                    minor = drbd_minor(self.path, self.system.stat)
                    self._note(why_not_writable(self.path, minor, self.system.run), e)
                else:
                    self._note(f"open failed: {e.strerror}", e)
                continue
            log.warning("%s is open now; serving it", self.path)
            self.reason = None
            self.on_open(backend)
            return
