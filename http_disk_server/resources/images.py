"""The image resource: one backend served as ovirt-imageio serves ``/images/<ticket>``.

  HEAD     size and ``Accept-Ranges``
  GET      ``Range: bytes=...`` -> 206, or the whole image -> 200
  PUT      the body written at the ``Content-Range`` offset (whole image without one)
  PATCH    ``{"op":"zero",...}`` or ``{"op":"flush"}``
  OPTIONS  what the server can do
"""

from __future__ import annotations

import json
from http import HTTPStatus

from nbdsuite.httprange import (
    UnsatisfiableRange,
    format_content_range,
    parse_put_offset,
    parse_range,
)

from ..backend import Backend
from ..config import Config
from ..errors import HTTPError
from ..exchange import Request, Response
from ..storage import Storage
from ..streaming import IO_CHUNK
from ..writes import WriteGate

MAX_PATCH_BODY = 64 << 10


def allowed(read_only: bool) -> list[str]:
    return ["OPTIONS", "GET", "HEAD"] + ([] if read_only else ["PUT", "PATCH"])


def send_options(resp: Response, config: Config, allow: list[str]) -> None:
    """The OPTIONS body every resource answers with (clients read it from ``/``)."""
    features = ["extents"] if config.read_only else ["zero", "flush", "extents",
                                                     "write_deadline"]
    # multi_conn: a flush covers writes completed on every connection (one shared fd,
    # fdatasync), so clients may spread I/O over several connections.
    resp.send_json({"features": features, "max_readers": config.max_connections,
                    "max_writers": config.max_writers, "multi_conn": True},
                   headers={"Allow": ", ".join(allow)})


class ImageResource:
    def __init__(self, storage: Storage, name: str, config: Config, gate: WriteGate) -> None:
        self._storage = storage
        self._name = name
        self._config = config
        self._gate = gate

    def allow(self) -> list[str]:
        return allowed(self._config.read_only)

    def options(self, req: Request, resp: Response) -> None:
        self._storage.get(self._name)   # 503 while the device is not open yet
        send_options(resp, self._config, self.allow())

    # ---- reads ---------------------------------------------------------------------

    def head(self, req: Request, resp: Response) -> None:
        self.get(req, resp)

    def get(self, req: Request, resp: Response) -> None:
        backend = self._storage.get(self._name)
        size = backend.size
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        value = req.header("Range")
        if value is None or req.method == "HEAD":
            resp.send_range(HTTPStatus.OK, headers, backend, 0, size)
            return
        first, last = parse_range(value, size)
        headers["Content-Range"] = format_content_range(first, last, size)
        resp.send_range(HTTPStatus.PARTIAL_CONTENT, headers, backend, first, last - first + 1)

    # ---- writes --------------------------------------------------------------------

    def _writable(self) -> Backend:
        if self._config.read_only:
            raise HTTPError(HTTPStatus.FORBIDDEN, "the server is read-only")
        return self._storage.get(self._name)

    def put(self, req: Request, resp: Response) -> None:
        backend = self._writable()
        size, limit = backend.size, self._config.max_put_size
        value = req.header("Content-Range")
        # Without Content-Range a PUT may only replace the whole image: a mistyped
        # `curl -T file URL` must not overwrite the first bytes (the partition table).
        whole = value is None
        offset = 0 if whole else parse_put_offset(value)
        flush = req.flag("flush", True)
        deadline = req.deadline()
        length = req.body_length()
        if length is not None:
            _check_put_extent(whole, offset, length, size)
            if length > limit:
                raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body of {length} bytes "
                                f"exceeds the limit of {limit} bytes")
        elif offset > size:
            raise UnsatisfiableRange(f"write at offset {offset} starts past the size {size}",
                                     size)
        # Large or chunked bodies hold one of the max_writers buffers.
        with self._gate.buffer_slot(length is None or length > IO_CHUNK, self._config.timeout):
            # The whole body is received before anything is written, so a body cut short
            # writes nothing at all.
            body = req.read_body(length, limit)
            _check_put_extent(whole, offset, len(body), size)
            with self._gate.device_write():
                req.check_deadline(deadline)    # the last moment before the data lands
                backend.write(memoryview(body), offset)
                if flush:
                    backend.flush()
        resp.send()

    def patch(self, req: Request, resp: Response) -> None:
        backend = self._writable()
        msg = _read_patch(req)
        op = msg.get("op")
        if op == "flush":
            # Changes no data, so a Write-Deadline does not apply.
            with self._gate.device_write():
                backend.flush()
        elif op == "zero":
            offset, count, flush = _zero_args(msg)
            if offset + count > backend.size:
                raise UnsatisfiableRange(f"zero of {count} bytes at offset {offset} ends past "
                                         f"the size {backend.size}", backend.size)
            deadline = req.deadline()
            with self._gate.device_write():
                req.check_deadline(deadline)
                backend.zero(offset, count)
                if flush:
                    backend.flush()
        else:
            raise HTTPError(HTTPStatus.BAD_REQUEST, f"unknown PATCH op {op!r}")
        resp.send()


def _check_put_extent(whole: bool, offset: int, length: int, size: int) -> None:
    if whole and length != size:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"a PUT without Content-Range must write the "
                        f"whole disk ({size} bytes), not {length} bytes; nothing written")
    if offset + length > size:
        raise UnsatisfiableRange(f"write of {length} bytes at offset {offset} ends past the "
                                 f"size {size}", size)


def _read_patch(req: Request) -> dict:
    length = req.body_length()
    if length is not None and length > MAX_PATCH_BODY:
        raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"PATCH body of {length} bytes exceeds {MAX_PATCH_BODY} bytes")
    body = req.read_body(length, MAX_PATCH_BODY)
    try:
        msg = json.loads(body)
    except ValueError as e:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"PATCH body is not JSON: {e}") from e
    if not isinstance(msg, dict):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "PATCH body must be a JSON object")
    return msg


def _zero_args(msg: dict) -> tuple[int, int, bool]:
    offset, count, flush = msg.get("offset"), msg.get("size"), msg.get("flush", False)
    for name, v in (("offset", offset), ("size", count)):
        if type(v) is not int or v < 0:
            raise HTTPError(HTTPStatus.BAD_REQUEST, f"zero: {name} must be a non-negative "
                            "integer")
    if not isinstance(flush, bool):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "zero: flush must be true or false")
    return offset, count, flush
