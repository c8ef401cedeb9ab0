"""Every parser and formatter of HTTP byte ranges in the suite (RFC 9110 section 14).

One module, so that the server, the multihttp client and the tests agree on one grammar:

* ``Range`` request headers (``parse_range``), read by http-disk-server. A request for
  several ranges is refused (416) rather than answered with a multipart body: no disk
  client needs multipart, and it would complicate every read path.
* ``Content-Range`` request headers of a PUT (``parse_put_offset``), read by the server.
  Only the offset counts; the length comes from the body, as in ovirt-imageio. That also
  accepts nbdkit's curl plugin, which sends ``bytes a-(a+count)/-1`` (one byte too many,
  and ``-1`` as the complete length).
* ``Content-Range`` response headers (``parse_content_range``), checked strictly by the
  multihttp client, and the formatters both sides use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BYTES_RANGE_RE = re.compile(r"(\d*)\s*-\s*(\d*)")
_PUT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*|-1)")
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class MalformedRange(ValueError):
    """A request's range header cannot be parsed (answered with 400)."""


class UnsatisfiableRange(ValueError):
    """A request's range parses but cannot be served (answered with 416 and
    ``Content-Range: bytes */size`` when ``size`` is known)."""

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class ContentRange:
    """``Content-Range: bytes first-last/complete``; ``complete`` is None for ``*``."""

    first: int
    last: int
    complete: int | None

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def parse_range(value: str, size: int) -> tuple[int, int]:
    """Return the inclusive (first, last) byte positions a ``Range`` value selects.

    The end is clamped to ``size - 1``; a first byte at or past ``size``, a zero-length
    suffix, or several ranges raise UnsatisfiableRange; bad syntax raises MalformedRange.
    """
    unit, sep, spec = value.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        raise MalformedRange(f"Range header {value!r} is not of the form bytes=first-last")
    if "," in spec:
        raise UnsatisfiableRange(f"Range header {value!r} asks for several ranges", size)
    m = _BYTES_RANGE_RE.fullmatch(spec.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise MalformedRange(f"Range header {value!r} is not of the form bytes=first-last")
    first_s, last_s = m.group(1), m.group(2)
    if not first_s:
        # Suffix form "-n": the last n bytes.
        n = int(last_s)
        if n == 0 or size == 0:
            raise UnsatisfiableRange(f"Range header {value!r} selects no byte", size)
        return max(0, size - n), size - 1
    first = int(first_s)
    if last_s and int(last_s) < first:
        raise MalformedRange(f"Range header {value!r} ends before it starts")
    last = int(last_s) if last_s else size - 1
    if first >= size:
        raise UnsatisfiableRange(f"Range header {value!r} starts at or past the size {size}",
                                 size)
    return first, min(last, size - 1)


def parse_put_offset(value: str) -> int:
    """Return the offset a PUT's ``Content-Range`` names (``bytes a-b/size|*|-1``)."""
    m = _PUT_RANGE_RE.fullmatch(value.strip())
    if not m:
        raise MalformedRange(f"Content-Range header {value!r} is not of the form bytes a-b/size")
    first, last = int(m.group(1)), int(m.group(2))
    if last < first:
        raise MalformedRange(f"Content-Range header {value!r} ends before it starts")
    return first


def parse_content_range(value: str) -> ContentRange:
    """Parse a satisfied ``Content-Range`` response value. Raises ValueError when malformed."""
    m = _CONTENT_RANGE_RE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"malformed Content-Range {value!r}")
    first, last = int(m.group(1)), int(m.group(2))
    complete = None if m.group(3) == "*" else int(m.group(3))
    if last < first:
        raise ValueError(f"Content-Range {value!r} ends before it starts")
    if complete is not None and last >= complete:
        raise ValueError(f"Content-Range {value!r} ends past the complete length")
    return ContentRange(first, last, complete)


def format_content_range(first: int, last: int, complete: int | None) -> str:
    return f"bytes {first}-{last}/{'*' if complete is None else complete}"


def format_unsatisfied(complete: int) -> str:
    """The ``Content-Range`` of a 416 reply: ``bytes */complete``."""
    return f"bytes */{complete}"
