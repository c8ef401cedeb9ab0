"""Parsing of the byte-range headers the server receives.

``Range`` (GET) follows RFC 9110 section 14.1.2 with one deliberate restriction:
a request for several ranges is refused with 416 rather than answered with a
multipart body, because no disk client needs multipart and it would complicate
every read path.

``Content-Range`` (PUT) only supplies the offset: the length comes from the
body, as in ovirt-imageio. That also accepts nbdkit's curl plugin, which sends
``bytes a-(a+count)/-1`` (one byte too many, and ``-1`` as the complete length).
"""

from __future__ import annotations

import re

_BYTES_RANGE_RE = re.compile(r"(\d*)\s*-\s*(\d*)")
_PUT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*|-1)")


class MalformedRange(ValueError):
    """The header cannot be parsed (answered with 400)."""


class UnsatisfiableRange(ValueError):
    """The header parses but cannot be served (answered with 416)."""


def parse_range(value: str, size: int) -> tuple[int, int]:
    """Return the inclusive (first, last) byte positions a ``Range`` value selects.

    The end is clamped to ``size - 1``; a first byte at or past ``size``, a
    zero-length suffix, or several ranges raise UnsatisfiableRange.
    """
    unit, sep, spec = value.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        raise MalformedRange(f"Range header {value!r} is not of the form bytes=first-last")
    if "," in spec:
        raise UnsatisfiableRange(f"Range header {value!r} asks for several ranges")
    m = _BYTES_RANGE_RE.fullmatch(spec.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise MalformedRange(f"Range header {value!r} is not of the form bytes=first-last")
    first_s, last_s = m.group(1), m.group(2)
    if not first_s:
        # Suffix form "-n": the last n bytes.
        n = int(last_s)
        if n == 0 or size == 0:
            raise UnsatisfiableRange(f"Range header {value!r} selects no byte")
        return max(0, size - n), size - 1
    first = int(first_s)
    if last_s and int(last_s) < first:
        raise MalformedRange(f"Range header {value!r} ends before it starts")
    last = int(last_s) if last_s else size - 1
    if first >= size:
        raise UnsatisfiableRange(f"Range header {value!r} starts at or past the size {size}")
    return first, min(last, size - 1)


def parse_put_offset(value: str) -> int:
    """Return the offset a PUT's ``Content-Range`` names (``bytes a-b/size|*``)."""
    m = _PUT_RANGE_RE.fullmatch(value.strip())
    if not m:
        raise MalformedRange(f"Content-Range header {value!r} is not of the form bytes a-b/size")
    first, last = int(m.group(1)), int(m.group(2))
    if last < first:
        raise MalformedRange(f"Content-Range header {value!r} ends before it starts")
    return first
