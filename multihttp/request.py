"""One HTTP exchange on one connection: HEAD, OPTIONS, GET range, PUT, PATCH.

Replies are checked strictly.  A GET is data only when it is a 206 whose
Content-Range and Content-Length describe exactly the bytes asked for; the
body is read straight into the caller's buffer.  Everything else raises
(see errors.py), and the caller closes the connection.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from multihttp.errors import ServerFault, status_error
from multihttp.server import Endpoint
from multihttp.wire import Connection, Response
from nbdsuite.httprange import format_content_range, parse_content_range


@dataclass(frozen=True)
class HeadInfo:
    size: int
    ranges: bool
    closes: bool      # the server closes the connection (HTTP/1.0 servers do)


def _with_write_deadline(conn: Connection, hdrs: dict[str, str]) -> dict[str, str]:
    """Stamp a write with the end of this attempt's budget (wall clock).

    A server that honours ``Write-Deadline`` refuses the write (412, nothing written)
    once that time has passed, so a write this client gave up on cannot land later,
    after a newer write went to another replica.  ``conn.write_deadline`` stays set
    until the reply arrives; runner.py waits it out (plus the clock skew) before
    sending the write anywhere else.
    """
    conn.write_deadline = time.time() + conn.budget
    hdrs["Write-Deadline"] = f"{conn.write_deadline:.3f}"
    return hdrs


def _answered(conn: Connection) -> None:
    """The server replied: it will not apply the write later."""
    conn.write_deadline = None


def head(conn: Connection, ep: Endpoint) -> HeadInfo:
    conn.send("HEAD", ep.target, ep.headers())
    resp = conn.response("HEAD")
    if resp.status != 200:
        raise status_error(resp.status, resp.reason, write=False, server=ep.label)
    length = resp.headers.get("content-length", "")
    size = int(length) if length.isdigit() else -1
    ranges = resp.headers.get("accept-ranges", "").strip().lower() == "bytes"
    return HeadInfo(size, ranges, resp.will_close)


# Pseudo-feature of servers whose OPTIONS reply allows no PUT.
READ_ONLY = "read-only"


def options(conn: Connection, ep: Endpoint) -> frozenset[str]:
    """Features from OPTIONS; an empty set for servers without the extension."""
    conn.send("OPTIONS", ep.target, ep.headers())
    resp = conn.response("OPTIONS")
    body = conn.read_small(resp)
    if resp.status != 200:
        return frozenset()
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return frozenset()
    feats = doc.get("features", []) if isinstance(doc, dict) else []
    out = {f for f in feats if isinstance(f, str)} if isinstance(feats, list) else set()
    # A server that lists its methods without PUT (http-disk-server --read-only) serves
    # a read-only disk: say so, so the export is read-only instead of failing writes.
    allow = resp.headers.get("allow")
    if allow is not None and "PUT" not in {m.strip().upper() for m in allow.split(",")}:
        out.add(READ_ONLY)
    return frozenset(out)


def send_range_get(conn: Connection, ep: Endpoint, offset: int, n: int,
                   extra: dict[str, str] | None = None) -> Response:
    """Send a GET of bytes [offset, offset+n) (plus ``extra`` headers); the reply's head.

    Accept-Encoding: identity, because without the header a server may apply any content
    coding (RFC 9110 section 12.5.3), and the range is then one of the coded bytes."""
    hdrs = ep.headers()
    hdrs["Range"] = f"bytes={offset}-{offset + n - 1}"
    hdrs["Accept-Encoding"] = "identity"
    if extra:
        hdrs.update(extra)
    conn.send("GET", ep.target, hdrs)
    return conn.response("GET")


def read_range_reply(conn: Connection, resp: Response, label: str, buf: memoryview,
                     offset: int, size: int | None, *, size_required: bool = False) -> None:
    """Fill ``buf`` from the reply to a GET of bytes [offset, offset+len(buf)), or raise
    ServerFault (the status's error for a status other than 206 or 200).

    The one strict check of a ranged reply, for every reader of this suite: data is only
    a 206 whose Content-Range is exactly the range asked for, whose Content-Length is its
    length (not chunked) and whose body has that many bytes.  ``size`` is the object's
    length; a Content-Range naming another one is refused, and with ``size_required`` so
    is one that leaves it unknown (``/*``).  A 200 means Range was ignored: its body
    would start at byte 0, so it is never data.  Nor is a body in a content coding.
    """
    n = len(buf)
    last = offset + n - 1
    if resp.status != 206:
        if resp.status == 200:
            raise ServerFault(f"{label}: answered 200 to a Range request")
        raise status_error(resp.status, resp.reason, write=False, server=label)
    cr = resp.headers.get("content-range", "")
    try:
        got = parse_content_range(cr)
    except ValueError as e:
        raise ServerFault(f"{label}: {e}") from None
    if got.complete is None:
        wrong_size = size_required
    else:
        wrong_size = size is not None and got.complete != size
    if got.first != offset or got.last != last or wrong_size:
        asked = f"{offset}-{last}" if size is None else f"{offset}-{last}/{size}"
        raise ServerFault(f"{label}: asked bytes {asked}, got {cr!r}")
    if resp.length != n or resp.chunked:
        raise ServerFault(f"{label}: Content-Length "
                          f"{resp.headers.get('content-length')!r} for a {n}-byte range")
    coding = resp.headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity"):
        # The bytes would be those of the coded representation, not of the object.
        raise ServerFault(f"{label}: Content-Encoding {coding!r} on a range reply (asked "
                          "for identity)")
    got_n = conn.readinto_all(buf)
    if got_n != n:
        raise ServerFault(f"{label}: body ended after {got_n} of {n} bytes")


def get_range(conn: Connection, ep: Endpoint, buf: memoryview, offset: int,
              size: int | None) -> None:
    """Fill ``buf`` with bytes [offset, offset+len(buf)) or raise."""
    resp = send_range_get(conn, ep, offset, len(buf))
    read_range_reply(conn, resp, ep.label, buf, offset, size)


def put_range(conn: Connection, ep: Endpoint, data: memoryview, offset: int,
              query: str) -> None:
    n = len(data)
    hdrs = ep.headers()
    hdrs["Content-Range"] = format_content_range(offset, offset + n - 1, None)
    hdrs["Content-Length"] = str(n)
    conn.send("PUT", ep.target + query, _with_write_deadline(conn, hdrs), data)
    resp = conn.response("PUT")
    _answered(conn)
    conn.read_small(resp)
    if not 200 <= resp.status < 300:
        raise status_error(resp.status, resp.reason, write=True, server=ep.label)


def patch(conn: Connection, ep: Endpoint, doc: dict) -> None:
    body = json.dumps(doc).encode()
    hdrs = ep.headers()
    hdrs["Content-Type"] = "application/json"
    hdrs["Content-Length"] = str(len(body))
    if doc.get("op") != "flush":        # a late flush harms nothing; a late zero does
        _with_write_deadline(conn, hdrs)
    conn.send("PATCH", ep.target, hdrs, body)
    resp = conn.response("PATCH")
    _answered(conn)
    conn.read_small(resp)
    if not 200 <= resp.status < 300:
        raise status_error(resp.status, resp.reason, write=doc.get("op") != "flush",
                           server=ep.label)
