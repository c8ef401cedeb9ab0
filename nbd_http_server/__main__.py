"""``nbd-http-server``: see wrapper.py for what it does."""

from __future__ import annotations

import signal
import sys
import threading

from nbdsuite.cli import entry_point

from .options import parse_args
from .wrapper import Wrapper


@entry_point
def main(argv: list[str] | None = None) -> int:
    o = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return Wrapper(o).run(stop)


if __name__ == "__main__":
    sys.exit(main())
