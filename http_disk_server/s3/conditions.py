"""GetObject/HeadObject preconditions (If-Match and friends) and the Range header.

Precedence is RFC 9110 section 13.2.2, which is what S3 does: If-Match, else
If-Unmodified-Since, may fail with 412; then If-None-Match, else If-Modified-Since, may
answer 304. Dates compare at whole seconds, as Last-Modified carries them; an unparsable
date is ignored, as the RFC says. Range parsing is the suite's one parser
(nbdsuite.httprange); like S3, a Range it cannot parse, or one asking for several
ranges, is ignored and the whole object is sent.
"""

from __future__ import annotations

import math
from email.message import Message
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus

from nbdsuite.httprange import (
    MalformedRange,
    UnsatisfiableRange,
    format_unsatisfied,
    parse_range,
)

from .errors import S3Error

NOT_MODIFIED = HTTPStatus.NOT_MODIFIED


def http_date(ts: float) -> str:
    return formatdate(math.floor(ts), usegmt=True)


def _etags_match(value: str, etag: str) -> bool:
    bare = etag.strip('"')
    for tag in value.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == "*" or tag.strip('"') == bare:
            return True
    return False


def _date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None or dt.tzinfo is None:
        return None
    return dt.timestamp()


def _failed(condition: str) -> S3Error:
    return S3Error(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed", "At least one of "
                   "the pre-conditions you specified did not hold", {"Condition": condition})


def check(headers: Message, etag: str, mtime: float) -> int | None:
    """None to go on; NOT_MODIFIED for a 304; raises S3Error 412 PreconditionFailed."""
    modified = math.floor(mtime)
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _etags_match(if_match, etag):
            raise _failed("If-Match")
    else:
        since = _date(headers.get("If-Unmodified-Since"))
        if since is not None and modified > since:
            raise _failed("If-Unmodified-Since")
    if_none = headers.get("If-None-Match")
    if if_none is not None:
        if _etags_match(if_none, etag):
            return NOT_MODIFIED
    else:
        since = _date(headers.get("If-Modified-Since"))
        if since is not None and modified <= since:
            return NOT_MODIFIED
    return None


def byte_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) a Range header selects, or None for the whole object;
    raises S3Error 416 InvalidRange when it cannot be satisfied."""
    if value is None or "," in value:
        return None
    try:
        return parse_range(value, size)
    except MalformedRange:
        return None
    except UnsatisfiableRange:
        raise S3Error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "InvalidRange",
                      "The requested range is not satisfiable",
                      {"RangeRequested": value, "ActualObjectSize": str(size)},
                      {"Content-Range": format_unsatisfied(size)}) from None
