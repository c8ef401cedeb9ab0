"""Routing requests to resources, and the one place where failures become replies.

Shaped like ovirt-imageio's ``http.Router``: a list of (path pattern, resource) pairs; a
resource is any object with ``get``/``head``/``put``/``patch``/``options`` methods taking
``(request, response, *groups of the pattern)`` and an ``allow()`` list. The disk API is
one router (service.py builds it); the S3 face (s3/app.py) is a second router over the
same backends, sharing ``errors.failure_for`` and ``reply_failure`` and formatting its
replies as S3 XML.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from .auth import BasicAuth
from .errors import Failure, HTTPError, failure_for
from .exchange import Request, Response

log = logging.getLogger("http_disk_server")

#: The methods this server knows; any other gets 405 (not 501: the Allow header tells
#: clients what they can do instead).
METHODS = ("OPTIONS", "GET", "HEAD", "PUT", "PATCH")


class Router:
    def __init__(self, routes: Sequence[tuple[str, Any]], auth: BasicAuth | None = None,
                 verbose: bool = False) -> None:
        self._routes = [(re.compile(pattern), resource) for pattern, resource in routes]
        self._auth = auth
        self._verbose = verbose

    def __call__(self, req: Request, resp: Response) -> None:
        try:
            self.dispatch(req, resp)
        except Exception as e:  # noqa: BLE001 - every failure gets exactly one reply
            self.fail(req, resp, e)

    def allow(self) -> list[str]:
        """Every method some resource of this router accepts, for 405 replies."""
        methods: list[str] = []
        for _, resource in self._routes:
            methods += [m for m in resource.allow() if m not in methods]
        return methods

    def dispatch(self, req: Request, resp: Response) -> None:
        if req.method not in METHODS:
            raise HTTPError(HTTPStatus.METHOD_NOT_ALLOWED, f"method {req.method} is not "
                            "supported", {"Allow": ", ".join(self.allow())})
        if self._auth is not None and not self._auth.check(req.header("Authorization")):
            raise HTTPError(HTTPStatus.UNAUTHORIZED, "authentication required",
                            {"WWW-Authenticate": self._auth.challenge()})
        for pattern, resource in self._routes:
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            method = getattr(resource, req.method.lower(), None)
            if method is None:
                raise HTTPError(HTTPStatus.METHOD_NOT_ALLOWED, f"{req.method} is not allowed "
                                f"on {req.path}", {"Allow": ", ".join(resource.allow())})
            method(req, resp, *match.groups())
            return
        raise HTTPError(HTTPStatus.NOT_FOUND, f"no such resource: {req.path}")

    def fail(self, req: Request, resp: Response, exc: Exception) -> None:
        reply_failure(req, resp, exc, failure_for(exc), self._verbose,
                      lambda f: resp.send_text(f.status, f.reason, f.headers))


def reply_failure(req: Request, resp: Response, exc: Exception, failure: Failure | None,
                  verbose: bool, send: Callable[[Failure], None]) -> None:
    """Answer ``exc`` with ``send(failure)`` (errors.failure_for says how), or cut the
    connection when the reply has already started or the client is gone. Every router
    ends failed requests here; only the body format (``send``) is its own."""
    if failure is None:
        log.info("%s: client connection lost: %s", req.line, exc)
        resp.close_connection()
        return
    if failure.internal:
        # A bug, not a client or device problem: keep the traceback.
        log.exception("%s: internal error", req.line)
    elif failure.loud or verbose:
        log.warning("%s: %d %s", req.line, failure.status, failure.reason)
    if resp.started:
        log.error("%s: %s; connection closed mid-reply", req.line, exc)
        resp.close_connection()
        return
    if failure.close:
        resp.close_connection(linger=failure.linger)
    elif not req.discard_body():
        # The unread body is too large to drop, or the client waits for 100 Continue.
        resp.close_connection(linger=True)
    try:
        send(failure)
    except OSError:  # best effort: the client may be gone
        resp.close_connection()
