"""One server of the list: where requests go (Endpoint), what is known about it
(Server), and how its failures are described in logs and errors."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from multihttp.errors import ServerFault
from multihttp.params import Params, ServerURL
from multihttp.pool import Pool


@dataclass(frozen=True)
class Endpoint:
    """What every request to one server carries, bound once: the request target, the
    Authorization header value (or None) and the label used in messages (the URL as
    given, which never holds credentials: params refuses them)."""

    target: str
    auth: str | None
    label: str

    def headers(self) -> dict[str, str]:
        """Fresh headers for one request (the caller adds its own)."""
        return {"Authorization": self.auth} if self.auth else {}


def basic_auth(p: Params, urls: Sequence[ServerURL], log: Callable[[str], None]
               ) -> str | None:
    """The Authorization header of user=/password= (None without user=); warns when it
    would cross plain http://, where anyone on the path reads the password."""
    if p.user is None:
        return None
    if any(u.scheme == "http" for u in urls):
        log("warning: HTTP Basic auth over plain http:// sends the password in clear "
            "text; prefer https://")
    token = base64.b64encode(f"{p.user}:{p.password or ''}".encode()).decode()
    return f"Basic {token}"


@dataclass
class Server:
    """One server and what we know about it."""

    index: int
    pool: Pool
    endpoint: Endpoint
    size: int | None = None
    features: frozenset[str] = frozenset()
    verified: bool = False           # HEAD checked since the last failure
    excluded: str | None = None      # why it must never be used (size mismatch)

    @property
    def label(self) -> str:
        return self.endpoint.label

    def failure(self, e: BaseException) -> str:
        """One line saying why a request to this server failed (no traceback, no
        secrets): a ServerFault already names the server; a socket error gets its label."""
        return str(e) if isinstance(e, ServerFault) else f"{self.label}: {describe(e)}"


def describe(e: BaseException) -> str:
    """A short reason for a socket-level failure (no traceback, no secrets)."""
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
