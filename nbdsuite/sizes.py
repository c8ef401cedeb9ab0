"""Size strings in nbdkit's notation (``1M``, ``4G``, ``512``).

nbdkit.parse_size() exists only inside nbdkit; this twin lets the same
parameters be parsed in the server, the wrapper and in tests.
"""

import re

_SUFFIXES = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "m": 1 << 20,
    "g": 1 << 30,
    "t": 1 << 40,
    "p": 1 << 50,
    "e": 1 << 60,
}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([a-zA-Z]?)\s*(?:i?b)?\s*", re.IGNORECASE)


def parse_size(text: str, what: str = "size") -> int:
    """Parse ``text`` as a byte count with an optional binary suffix (k, M, G, T, P, E).

    Raises ValueError naming ``what`` and the bad text.
    """
    m = _SIZE_RE.fullmatch(text)
    if not m or m.group(2).lower() not in _SUFFIXES:
        raise ValueError(f"{what}: cannot parse {text!r} as a size (examples: 4096, 64M, 1G)")
    value = int(m.group(1)) * _SUFFIXES[m.group(2).lower()]
    if value >= 1 << 63:
        raise ValueError(f"{what}: {text!r} is too large")
    return value
