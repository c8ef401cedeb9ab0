"""Message framing rules of requests (RFC 9112 sections 6 and 7): how long the body is."""

from __future__ import annotations

import re
from email.message import Message
from http import HTTPStatus

from .errors import HTTPError

_DIGITS_RE = re.compile(r"\d{1,19}")


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
