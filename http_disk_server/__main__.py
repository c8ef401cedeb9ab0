"""Command line: http-disk-server --disk PATH | --snapshot FILE.hxz [options]."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import ssl
import sys
import threading

from nbdsuite.sizes import parse_size

from .auth import BasicAuth
from .config import Config
from .service import DiskService

PROG = "http-disk-server"


def _positive_float(text: str) -> float:
    v = float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Serve a block device, a file or a Hexz "
                                "snapshot over HTTP/1.1 with ranged reads and durable writes.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--disk", metavar="PATH", help="block device or regular file to serve")
    src.add_argument("--snapshot", metavar="FILE.hxz",
                     help="serve a Hexz snapshot's decompressed streams, read-only")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 = any)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.add_argument("--read-only", action="store_true", help="refuse PUT and PATCH with 403")
    p.add_argument("--user", help="require HTTP Basic auth with this user name")
    p.add_argument("--password-file", metavar="F",
                   help="file whose first line is the password (with --user)")
    p.add_argument("--tls-cert", metavar="C", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", metavar="K", help="PEM private key for --tls-cert")
    p.add_argument("--max-put-size", default="128M", metavar="SIZE",
                   help="largest PUT body accepted, else 413 (default 128M)")
    p.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECS",
                   help="close connections idle or stalled this long (default 60)")
    p.add_argument("--shutdown-timeout", type=_positive_float, default=10.0, metavar="SECS",
                   help="on SIGTERM, how long requests in flight may take (default 10)")
    p.add_argument("--max-connections", type=int, default=64, metavar="N",
                   help="concurrent connections; more get 503 (default 64)")
    p.add_argument("--max-writers", type=int, default=8, metavar="N",
                   help="large PUT bodies buffered at once (default 8)")
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """Validate the options; raises ValueError/OSError with a one-line reason."""
    max_put = parse_size(args.max_put_size, "--max-put-size")
    if max_put <= 0:
        raise ValueError("--max-put-size must be positive")
    if args.max_connections < 1 or args.max_writers < 1:
        raise ValueError("--max-connections and --max-writers must be at least 1")
    if (args.user is None) != (args.password_file is None):
        raise ValueError("--user and --password-file go together")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    auth = BasicAuth.from_file(args.user, args.password_file) if args.user else None
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
        except (ssl.SSLError, OSError) as e:
            raise ValueError(f"cannot load --tls-cert {args.tls_cert} / --tls-key "
                             f"{args.tls_key}: {e}") from e
    return Config(read_only=args.read_only or args.snapshot is not None, max_put_size=max_put,
                  timeout=args.timeout, shutdown_timeout=args.shutdown_timeout,
                  max_connections=args.max_connections, max_writers=args.max_writers,
                  verbose=args.verbose, auth=auth, ssl_context=ctx)


def _die(msg: str) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format=f"{PROG}: %(levelname)s: %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)
    try:
        config = config_from_args(args)
    except (ValueError, OSError) as e:
        return _die(str(e))

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # Installed before binding so an early SIGTERM still ends in a clean exit.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        service = DiskService(config, args.ip, args.port, disk=args.disk, snapshot=args.snapshot)
    except OSError as e:
        reason = "address already in use" if e.errno == errno.EADDRINUSE else e.strerror or e
        return _die(f"cannot listen on {args.ip}:{args.port}: {reason}")
    try:
        opened = service.open()
    except Exception as e:  # OSError, hxz.FormatError...: one clear line, no traceback
        service.server.server_close()
        what = args.disk or args.snapshot
        detail = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return _die(f"cannot open {what}: {detail}")
    service.serve_in_thread()
    what = args.disk or args.snapshot
    state = "serving" if opened else "waiting for DRBD to open"
    # Storage drivers wait for a line ending in "Server ready!" (compatibility contract).
    print(f"{PROG}: {state} {what} on {service.url} Server ready!", flush=True)

    while not stop.wait(1.0):
        pass
    logging.getLogger("http_disk_server").info("stopping")
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
