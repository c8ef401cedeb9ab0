"""Parsing and formatting of HTTP byte ranges (RFC 9110 section 14).

The server uses it to read ``Range`` and ``Content-Range`` request headers, the
multihttp client uses it to check ``Content-Range`` response headers, so both
sides agree on one strict grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RE = re.compile(r"bytes \*/(\d+)")


@dataclass(frozen=True)
class ContentRange:
    """``Content-Range: bytes first-last/complete``; ``complete`` is None for ``*``."""

    first: int
    last: int
    complete: int | None

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def parse_content_range(value: str) -> ContentRange:
    """Parse a satisfied ``Content-Range`` value. Raises ValueError when malformed."""
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
    return f"bytes */{complete}"


def parse_unsatisfied(value: str) -> int:
    """Parse ``bytes */N`` (sent with 416). Raises ValueError when malformed."""
    m = _UNSATISFIED_RE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"malformed unsatisfied Content-Range {value!r}")
    return int(m.group(1))
