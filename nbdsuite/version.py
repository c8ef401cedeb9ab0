"""The suite's one version number, from the installed package's metadata.

Run from a checkout that was never installed (``nbdkit python plugins/hexz.py`` in a
clone), the metadata does not exist; the number then comes from setup.cfg, where it is
written once.
"""

from __future__ import annotations

import configparser
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DIST = "nbdkit-python-suite"


def _from_checkout() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    return cfg.get("metadata", "version", fallback="unknown")


try:
    VERSION = version(DIST)
except PackageNotFoundError:
    VERSION = _from_checkout()
