"""Command line: http-disk-server --disk PATH | --snapshot FILE.hxz | --s3 DIR [options].

Every bad argument or unusable input ends in one line naming it and exit status 1 (2 for
argument syntax, as argparse does), never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import ssl
import sys
import threading

from nbdsuite.cli import entry_point, port, positive_float, positive_int
from nbdsuite.sizes import parse_size
from nbdsuite.version import VERSION

from .auth import BasicAuth
from .config import Config
from .s3.gateway import DEFAULT_BUCKET, S3Settings
from .service import DiskService
from .snapshot import VERIFY_MODES

PROG = "http-disk-server"
log = logging.getLogger("http_disk_server")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line: argparse's usage block would bury the reason.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Serve a block device, a file or a Hexz snapshot over "
                "HTTP/1.1 with ranged reads and durable writes.")
    p.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--disk", metavar="PATH", help="block device or regular file to serve")
    src.add_argument("--snapshot", metavar="FILE.hxz",
                     help="serve a Hexz snapshot's decompressed streams, read-only")
    src.add_argument("--s3", metavar="DIR",
                     help="serve the raw images and .hxz archives in DIR as a read-only S3 "
                     "bucket (see --bucket, --credentials, --s3-anonymous)")
    p.add_argument("--bucket", metavar="NAME", default=None,
                   help=f"with --s3: the bucket name (default {DEFAULT_BUCKET})")
    p.add_argument("--credentials", metavar="FILE", default=None,
                   help="with --s3: AWS credentials file (sections with aws_access_key_id "
                   "and aws_secret_access_key); every request must be signed (SigV4)")
    p.add_argument("--s3-anonymous", action="store_true",
                   help="with --s3: also serve unsigned requests")
    p.add_argument("--verify", choices=VERIFY_MODES, default=None,
                   help="with --snapshot or --s3: crc (default) checks the CRC-32 of stored "
                   "blocks; "
                   "hash also the BLAKE3 hash of every decompressed block")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=port, default=8000, help="TCP port (default 8000; 0 = any)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.add_argument("--read-only", action="store_true", help="refuse PUT and PATCH with 403")
    p.add_argument("--user", help="require HTTP Basic auth with this user name (with --s3: "
                   "for GET /metrics only)")
    p.add_argument("--password-file", metavar="F",
                   help="file whose first line is the password (with --user)")
    p.add_argument("--tls-cert", metavar="C", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", metavar="K", help="PEM private key for --tls-cert")
    p.add_argument("--max-put-size", default="128M", metavar="SIZE",
                   help="largest PUT body accepted, else 413 (default 128M)")
    p.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECS",
                   help="close connections idle or stalled this long (default 60)")
    p.add_argument("--shutdown-timeout", type=positive_float, default=10.0, metavar="SECS",
                   help="on SIGTERM, how long requests in flight may take (default 10)")
    p.add_argument("--max-connections", type=positive_int, default=64, metavar="N",
                   help="concurrent connections; more get 503 (default 64)")
    p.add_argument("--max-writers", type=positive_int, default=8, metavar="N",
                   help="large PUT bodies buffered at once (default 8)")
    p.add_argument("--no-metrics", action="store_true",
                   help="do not serve GET /metrics (Prometheus text format)")
    return p


def _oserror_text(e: BaseException) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise ValueError(f"cannot load --tls-cert {cert} / --tls-key {key}: "
                         f"{_oserror_text(e)}") from e
    return ctx


def config_from_args(args: argparse.Namespace) -> Config:
    """Validate the options; raises ValueError with a one-line reason."""
    max_put = parse_size(args.max_put_size, "--max-put-size")
    if max_put <= 0:
        raise ValueError("--max-put-size must be positive")
    if args.verify is not None and args.snapshot is None and args.s3 is None:
        raise ValueError("--verify goes with --snapshot or --s3")
    if args.s3 is None and (args.bucket or args.credentials or args.s3_anonymous):
        raise ValueError("--bucket, --credentials and --s3-anonymous go with --s3")
    if (args.user is None) != (args.password_file is None):
        raise ValueError("--user and --password-file go together")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    auth = BasicAuth.from_file(args.user, args.password_file) if args.user else None
    ctx = _tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    read_only = args.read_only or args.snapshot is not None or args.s3 is not None
    return Config(read_only=read_only, max_put_size=max_put,
                  timeout=args.timeout, shutdown_timeout=args.shutdown_timeout,
                  max_connections=args.max_connections, max_writers=args.max_writers,
                  verbose=args.verbose, auth=auth, ssl_context=ctx,
                  metrics=not args.no_metrics)


def _die(msg: str) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)
    return 1


def _announce(line: str) -> None:
    """Print the readiness line. If nobody reads stdout any more, keep serving: stdout is
    pointed at /dev/null so that no later flush (at exit) fails either."""
    try:
        # One write: print() would send the newline separately when stdout is unbuffered
        # (PYTHONUNBUFFERED), and a reader that closes after "Server ready!" sees EPIPE.
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except OSError as e:
        log.warning("cannot print the ready line (%s); serving anyway", _oserror_text(e))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@entry_point
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

    what = args.disk or args.snapshot or args.s3
    s3 = None
    if args.s3 is not None:
        s3 = S3Settings(args.s3, args.bucket or DEFAULT_BUCKET, args.credentials,
                        args.s3_anonymous, args.verify or "crc")
        try:
            s3.check(config)
        except ValueError as e:
            return _die(str(e))
    try:
        service = DiskService(config, args.ip, args.port, disk=args.disk,
                              snapshot=args.snapshot, verify=args.verify or "crc", s3=s3)
    except OSError as e:
        reason = "address already in use" if e.errno == errno.EADDRINUSE else _oserror_text(e)
        return _die(f"cannot listen on {args.ip}:{args.port}: {reason}")
    try:
        opened = service.open()
    except ValueError as e:  # a bad setting (credentials file...): its own one line
        service.server.server_close()
        return _die(str(e))
    except Exception as e:  # OSError, hxz.FormatError...: one clear line, no traceback
        service.server.server_close()
        return _die(f"cannot open {what}: {_oserror_text(e)}")
    service.serve_in_thread()
    state = "serving" if opened else "waiting for DRBD to open"
    # Storage drivers wait for a line ending in "Server ready!" (compatibility contract).
    _announce(f"{PROG}: {state} {what} on {service.url} Server ready!")

    while not stop.wait(1.0):
        pass
    log.info("stopping")
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
