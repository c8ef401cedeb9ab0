"""Message framing rules of requests (RFC 9112 sections 6 and 7): how long the body is,
and which headers may appear only once.

A header whose repetition makes the body length or the target ambiguous is refused
outright (400, nothing written, connection closed), two equal ``Content-Length`` values
included: RFC 9110 section 8.6 lets a recipient merge identical values, but refusing is
also allowed, simpler to reason about, and no client of this server sends them.
"""

from __future__ import annotations

import re
from email.message import Message
from http import HTTPStatus

from .deadline import HEADER as DEADLINE_HEADER
from .errors import HTTPError

#: Headers that must appear at most once in a request.
SINGLE = ("Content-Length", "Transfer-Encoding", "Content-Range", "Range", "Host",
          DEADLINE_HEADER)

_DIGITS_RE = re.compile(r"\d{1,19}")


def repeated_header(headers: Message) -> str | None:
    """The first header of ``SINGLE`` that the request carries more than once, or None."""
    for name in SINGLE:
        values = headers.get_all(name)
        if values is not None and len(values) > 1:
            return name
    return None


def declared_length(headers: Message) -> int | None:
    """The body length a request declares: its Content-Length, or None for a chunked body.

    Raises HTTPError: 400 for both headers at once, an unsupported transfer coding or a
    malformed length; 411 when neither header is present.
    """
    te = headers.get("Transfer-Encoding")
    cl = headers.get("Content-Length")
    if te is not None:
        if cl is not None:
            raise HTTPError(HTTPStatus.BAD_REQUEST,
                            "both Content-Length and Transfer-Encoding are present")
        if te.strip().lower() != "chunked":
            raise HTTPError(HTTPStatus.BAD_REQUEST,
                            f"Transfer-Encoding {te!r} is not supported (only chunked)")
        return None
    if cl is None:
        raise HTTPError(HTTPStatus.LENGTH_REQUIRED,
                        "a Content-Length or a chunked body is required")
    cl = cl.strip()
    if not _DIGITS_RE.fullmatch(cl):
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"malformed Content-Length {cl!r}")
    return int(cl)
