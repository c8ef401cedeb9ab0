"""The Router in process: paths to resources, methods to 404/405, authentication, and every
kind of failure to exactly one reply (errors.failure_for is the one mapping)."""

from __future__ import annotations

import errno
from http import HTTPStatus

import pytest

from http_disk_server.auth import BasicAuth
from http_disk_server.backend import BackendError
from http_disk_server.body import BodyAborted, BodyError
from http_disk_server.deadline import StaleWrite
from http_disk_server.errors import Busy, HTTPError, NotReady, failure_for
from http_disk_server.router import Router
from nbdsuite.httprange import MalformedRange, UnsatisfiableRange


class FakeRequest:
    def __init__(self, method: str, path: str, headers: dict | None = None,
                 drained: bool = True) -> None:
        self.method, self.path, self.line = method, path, f"{method} {path} HTTP/1.1"
        self._headers = headers or {}
        self._drained = drained

    def header(self, name: str) -> str | None:
        return self._headers.get(name)

    def discard_body(self) -> bool:
        return self._drained


class FakeResponse:
    def __init__(self, started: bool = False) -> None:
        self.started = started
        self.sent: list[tuple[int, str, dict]] = []
        self.closed: bool | None = None      # None: kept open; else the linger flag

    def send_text(self, status: int, text: str, headers: dict | None = None) -> None:
        self.sent.append((status, text, headers or {}))

    def close_connection(self, linger: bool = False) -> None:
        self.closed = bool(self.closed) or linger


class Resource:
    """Records calls; ``fail`` makes every method raise it."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    def allow(self) -> list[str]:
        return ["OPTIONS", "GET"]

    def get(self, req, resp, *groups) -> None:
        self.calls.append(("get", req.path, groups))
        if self.fail is not None:
            raise self.fail

    options = get


def route(method: str, path: str, resource: Resource | None = None, **kw):
    resource = resource or Resource()
    router = Router([("/", resource), (r"/items/(\w+)", resource)], **kw)
    req, resp = FakeRequest(method, path, kw.pop("headers", None)), FakeResponse()
    router(req, resp)
    return resource, resp


def test_routes_by_pattern_and_passes_groups():
    r, resp = route("GET", "/items/abc")
    assert r.calls == [("get", "/items/abc", ("abc",))] and resp.sent == []
    r, _ = route("GET", "/")
    assert r.calls == [("get", "/", ())]


def test_unknown_path_is_404():
    r, resp = route("GET", "/nothing")
    assert r.calls == [] and resp.sent[0][0] == 404 and "/nothing" in resp.sent[0][1]


def test_method_without_handler_is_405_with_the_resource_allow():
    _, resp = route("PATCH", "/")
    assert resp.sent == [(405, "PATCH is not allowed on /", {"Allow": "OPTIONS, GET"})]


def test_unknown_method_is_405_with_every_allowed_method():
    _, resp = route("BREW", "/")
    assert resp.sent[0][0] == 405 and resp.sent[0][2] == {"Allow": "OPTIONS, GET"}


def test_authentication_comes_before_routing():
    auth = BasicAuth("u", "p")
    router = Router([("/", Resource())], auth=auth)
    resp = FakeResponse()
    router(FakeRequest("GET", "/nothing"), resp)
    assert resp.sent[0][0] == 401 and resp.sent[0][2]["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("exc,status,extra", [
    (HTTPError(403, "read-only"), 403, {}),
    (NotReady("DRBD is Primary on b"), 503, {"Retry-After": "1"}),
    (Busy("too many writers"), 503, {"Retry-After": "1"}),
    (StaleWrite("write deadline passed"), 412, {}),
    (MalformedRange("bad"), 400, {}),
    (UnsatisfiableRange("past the end", 1000), 416, {"Content-Range": "bytes */1000"}),
    (BackendError(errno.ENOSPC, "disk: full"), 507, {}),
    (BackendError(errno.EROFS, "disk: read-only"), 403, {}),
    (BackendError(errno.EIO, "disk: read at offset 0 failed"), 500, {}),
    (Busy("the server is shutting down"), 503, {"Retry-After": "1"}),
    (RuntimeError("a bug"), 500, {}),
])
def test_failures_become_one_reply(exc, status, extra):
    _, resp = route("GET", "/", Resource(fail=exc))
    assert len(resp.sent) == 1
    got_status, text, headers = resp.sent[0]
    assert got_status == status and headers == extra and "\n" not in text
    if isinstance(exc, RuntimeError):
        assert text == "internal error" and resp.closed is not None   # no detail leaks


@pytest.mark.parametrize("exc,status,linger", [
    (BodyAborted("body ended after 10 of 20 bytes"), 400, False),
    (BodyAborted("reading the body failed: timed out", timed_out=True), 408, False),
    (BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "chunked body too large"), 413, True),
    (BodyError(HTTPStatus.BAD_REQUEST, "malformed chunk size"), 400, False),
])
def test_body_failures_close_the_connection(exc, status, linger):
    _, resp = route("GET", "/", Resource(fail=exc))
    assert resp.sent[0][0] == status and resp.closed is linger


def test_connection_lost_sends_nothing():
    _, resp = route("GET", "/", Resource(fail=BrokenPipeError()))
    assert resp.sent == [] and resp.closed is not None


def test_failure_after_the_reply_started_cuts_the_connection():
    router = Router([("/", Resource(fail=BackendError(errno.EIO, "disk: read failed")))])
    resp = FakeResponse(started=True)
    router(FakeRequest("GET", "/"), resp)
    assert resp.sent == [] and resp.closed is not None


def test_undrainable_body_closes_with_linger():
    router = Router([("/", Resource(fail=HTTPError(416, "past the end")))])
    resp = FakeResponse()
    router(FakeRequest("GET", "/", drained=False), resp)
    assert resp.sent[0][0] == 416 and resp.closed is True


def test_failure_for_is_the_mapping():
    assert failure_for(ConnectionResetError()) is None
    assert failure_for(StaleWrite("x")).loud
    assert not failure_for(NotReady("x")).loud          # routine while DRBD waits
    assert failure_for(ValueError("x")).internal
