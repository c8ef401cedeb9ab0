"""Helpers for the nbdkit Python plugins that do not need the nbdkit module."""

import os
import sys
from typing import NoReturn


def refuse_start(plugin: str, message: str) -> NoReturn:
    """Stop nbdkit during configuration with exactly one line on stderr.

    nbdkit 1.32 prints a Python traceback for any exception a config callback
    raises; a bad parameter or archive deserves one line naming what is wrong.
    Exiting is safe there: nothing is bound or forked yet.
    """
    sys.stderr.write(f"nbdkit: {plugin}: error: {message}\n")
    sys.stderr.flush()
    os._exit(1)
