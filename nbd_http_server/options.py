"""nbd-http-server's command line: the options, and the defaults that depend on whether
it runs from a checkout or installed."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from nbdsuite.sizes import parse_size
from nbdsuite.version import VERSION

# In a checkout, the plugin script next to the package; once installed (make install),
# nbdkit finds "multihttp" in its own plugin directory.
_CHECKOUT_PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "multihttp.py"
DEFAULT_PLUGIN = str(_CHECKOUT_PLUGIN) if _CHECKOUT_PLUGIN.exists() else "multihttp"


def is_script(plugin: str) -> bool:
    """A path to a Python plugin script (run as ``nbdkit python PATH``), not a name."""
    return "/" in plugin or plugin.endswith(".py")


@dataclass
class Options:
    socket_path: str
    nbd_name: str
    urls: str
    device_size: int | None
    user: str | None = None
    password_file: str | None = None
    timeout: float | None = None
    connect_timeout: float | None = None
    retries: int | None = None
    retry_delay: float | None = None
    cafile: str | None = None
    insecure: bool = False
    connections: int | None = None
    no_attach: bool = False
    read_only: bool = False
    pidfile: str | None = None
    nbd_timeout: int | None = None
    start_timeout: float = 8.0
    dev_dir: str = "/dev"
    sys_dir: str = "/sys"
    lock_file: str = "/run/lock/nbd-http-server.lock"
    nbdkit: str = "nbdkit"
    plugin: str = DEFAULT_PLUGIN
    threads: int = 4
    verbose: bool = False

    def plugin_pairs(self) -> list[tuple[str, str]]:
        """The multihttp parameters these options set, for multihttp.params.apply (the
        password excepted: the plugin reads it from --password-file, we never do)."""
        pairs = [("urls", self.urls)]
        for key, val in (("device-size", self.device_size), ("user", self.user),
                         ("timeout", self.timeout), ("connect-timeout", self.connect_timeout),
                         ("retries", self.retries), ("retry-delay", self.retry_delay),
                         ("cafile", self.cafile), ("connections", self.connections)):
            if val is not None:
                pairs.append((key, str(val)))
        if self.insecure:
            pairs.append(("insecure", "true"))
        return pairs


def parse_args(argv: list[str] | None) -> Options:
    ap = argparse.ArgumentParser(prog="nbd-http-server",
                                 description="Attach a disk served by http-disk-server(s) "
                                             "as /dev/nbdX through nbdkit's multihttp plugin.")
    ap.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    ap.add_argument("--socket-path", required=True, help="Unix socket nbdkit listens on")
    ap.add_argument("--nbd-name", required=True, help="NBD export name")
    ap.add_argument("--urls", required=True, help="comma-separated server URLs")
    ap.add_argument("--device-size", help="disk size (nbdkit suffixes: 4M, 256M, 1G)")
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    ap.add_argument("--timeout", type=float)
    ap.add_argument("--connect-timeout", type=float)
    ap.add_argument("--retries", type=int)
    ap.add_argument("--retry-delay", type=float)
    ap.add_argument("--cafile")
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--connections", type=int,
                    help="HTTP connections per server (plugin default 4)")
    ap.add_argument("--no-attach", action="store_true",
                    help="only run nbdkit and print the NBD URI")
    ap.add_argument("--read-only", action="store_true")
    ap.add_argument("--pidfile", help="nbdkit pidfile (default: SOCKET.pid)")
    ap.add_argument("--nbd-timeout", type=int,
                    help="nbd-client -t seconds (default: the plugin's worst case + 10)")
    ap.add_argument("--start-timeout", type=float, default=8.0)
    ap.add_argument("--dev-dir", default="/dev")
    ap.add_argument("--sys-dir", default="/sys")
    ap.add_argument("--lock-file", default="/run/lock/nbd-http-server.lock")
    ap.add_argument("--nbdkit", default="nbdkit")
    ap.add_argument("--plugin", default=DEFAULT_PLUGIN,
                    help="plugin script path, or an installed plugin's name "
                         f"(default {DEFAULT_PLUGIN})")
    # Measured (bench/RESULTS.md): 4 nbdkit threads beat the default 16 for the
    # Python plugin on 2 cores, in sequential and QD1 reads alike.
    ap.add_argument("--threads", type=int, default=4, help="nbdkit --threads (default 4)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    size = None
    if a.device_size is not None:
        try:
            size = parse_size(a.device_size, "--device-size")
        except ValueError as e:
            ap.error(str(e))
    kw = {k: v for k, v in vars(a).items() if k != "device_size"}
    return Options(device_size=size, **kw)
