"""What every command-line entry point of the suite shares.

A bad argument or an unusable input ends in one line naming what is wrong and a
non-zero exit, never a traceback.  Two exceptions are not errors of the program
and get no traceback either: the reader of our output went away
(``hxz-info X | head``), and Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., int])


def port(text: str) -> int:
    """argparse type: a TCP port number, 0 meaning any free port."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is outside 0-65535")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def entry_point(main: F) -> F:
    """Wrap a ``main() -> exit status`` so a closed stdout and Ctrl-C end quietly."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        try:
            status = main(*args, **kwargs)
            sys.stdout.flush()
            return status
        except BrokenPipeError:
            # Python would report the failed flush again at exit; point stdout at
            # /dev/null so it does not (the documented idiom for SIGPIPE).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1
        except KeyboardInterrupt:
            return 130

    return wrapper  # type: ignore[return-value]
