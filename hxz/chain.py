"""Finding parent archives of a thin archive on disk (docs/hxz-format.md §7.3).

Search order for each path stored in the header:
  * absolute path: as is; then ``basename`` in each extra directory (archives moved);
  * relative path: relative to the child's directory, then to the current working
    directory, then relative to each extra directory, then ``basename`` in each.
The first candidate that is a regular file wins.  Cycles and depth are checked by the
caller (archive.py) with the real paths returned here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

MAX_DEPTH = 32


def candidates(stored: str, child_path: str, parent_dirs: Sequence[str]) -> list[str]:
    out: list[str] = []
    base = os.path.basename(stored)
    if os.path.isabs(stored):
        out.append(stored)
    else:
        out.append(os.path.join(os.path.dirname(os.path.abspath(child_path)), stored))
        out.append(os.path.abspath(stored))
        out.extend(os.path.join(d, stored) for d in parent_dirs)
    if base:
        out.extend(os.path.join(d, base) for d in parent_dirs)
    seen: set[str] = set()
    unique = []
    for c in out:
        if c not in seen:
            seen.add(c)
            unique.append(c)
    return unique


def find_parent(stored: str, child_path: str, parent_dirs: Iterable[str]) -> str | None:
    """Return the real path of the first existing candidate, or None."""
    for c in candidates(stored, child_path, list(parent_dirs)):
        if os.path.isfile(c):
            return os.path.realpath(c)
    return None
