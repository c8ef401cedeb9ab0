"""Plugin parameters: parsing and validation.

Every problem becomes a ``ParamError`` whose message is one line naming the
parameter; the password value never appears in any message or repr.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from nbdsuite.sizes import parse_size


class ParamError(ValueError):
    """A bad plugin parameter. str() is a single line fit for nbdkit's error log."""


@dataclass(frozen=True)
class ServerURL:
    """One parsed server URL."""

    url: str          # as given, minus any userinfo (safe to log)
    scheme: str       # "http" or "https"
    host: str
    port: int
    path: str         # request target, at least "/"

    @property
    def label(self) -> str:
        return self.url


@dataclass
class Params:
    urls: list[ServerURL] = field(default_factory=list)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    device_size: int | None = None
    timeout: float = 10.0
    connect_timeout: float = 2.0
    retries: int = 2
    retry_delay: float = 0.1
    cafile: str | None = None
    insecure: bool = False
    connections: int = 4
    clock_skew: float = 1.0

    def __repr__(self) -> str:  # never show the password, even by accident
        hidden = "<set>" if self.password is not None else None
        return (f"Params(urls={[u.url for u in self.urls]!r}, user={self.user!r}, "
                f"password={hidden}, device_size={self.device_size}, timeout={self.timeout}, "
                f"connect_timeout={self.connect_timeout}, retries={self.retries}, "
                f"retry_delay={self.retry_delay}, cafile={self.cafile!r}, "
                f"insecure={self.insecure}, connections={self.connections}, "
                f"clock_skew={self.clock_skew})")

    __str__ = __repr__


KNOWN_KEYS = ("urls", "user", "password", "device-size", "timeout", "connect-timeout",
              "retries", "retry-delay", "cafile", "insecure", "connections", "clock-skew")

# HTTP connections per server per nbdkit process stay well below
# http-disk-server's default limit (64), so several nbdkit instances on one
# server do not get 503 for too many connections.
MAX_CONNECTIONS = 32

# Backoff between retries on one server never exceeds this many seconds, so the
# worst case stays bounded and computable.
MAX_BACKOFF = 2.0


def redact_url(raw: str) -> str:
    """``raw`` with any user:password@ part replaced, for messages: a URL that carries
    credentials must not put them into a log, even when it is refused for that."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return raw if "@" not in raw else "<URL with credentials>"
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0),
              default=len(rest))
    authority = rest[:end]
    if "@" in authority:
        authority = "<credentials>@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{rest[end:]}"


def check_url(raw: str, key: str, schemes: tuple[str, ...], shown: str,
              credentials_hint: str) -> SplitResult:
    """Split a URL given as parameter ``key`` and refuse a bad port, another scheme, no host,
    or credentials inside it (they would end up in logs and process titles).  ``shown`` is
    the form of the URL that messages may carry."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise ParamError(f"{key}: bad URL {shown!r}: {e}") from None
    if parts.scheme not in schemes:
        names = " or ".join([", ".join(schemes[:-1]), schemes[-1]])
        raise ParamError(f"{key}: {shown!r}: scheme must be {names}")
    if not parts.hostname:
        raise ParamError(f"{key}: {shown!r}: no host" + (" (or bucket)" if "s3" in schemes
                                                         else ""))
    if parts.username or parts.password:
        raise ParamError(f"{key}: {shown}: put credentials in {credentials_hint}, not in "
                         "the URL")
    return parts


def parse_url(text: str) -> ServerURL:
    """Parse one server URL; only http and https with an explicit host are accepted."""
    raw = text.strip()
    parts = check_url(raw, "urls", ("http", "https"), redact_url(raw), "user= and password=")
    port = parts.port
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return ServerURL(raw, parts.scheme, parts.hostname, port, path)


def _strip_newline(s: str) -> str:
    # nbdkit's convention: exactly one trailing newline is not part of the password.
    if s.endswith("\r\n"):
        return s[:-2]
    if s.endswith("\n"):
        return s[:-1]
    return s


def read_password(value: str) -> str:
    """Resolve nbdkit's password forms: literal, ``-`` (terminal or stdin),
    ``+FILE`` and ``-FD``."""
    if value == "-":
        if sys.stdin is not None and sys.stdin.isatty():
            return getpass.getpass("password: ")
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(0, 4096)
            if not chunk:
                break
            data += chunk
        return _strip_newline(data.decode())
    if value.startswith("+"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as f:
                return _strip_newline(f.read())
        except OSError as e:
            raise ParamError(f"password: cannot read password file {path!r}: "
                             f"{e.strerror}") from None
    if len(value) > 1 and value[0] == "-" and value[1:].isdigit():
        fd = int(value[1:])
        chunks = []
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(fd)
        except OSError as e:
            raise ParamError(f"password: cannot read file descriptor {fd}: "
                             f"{e.strerror}") from None
        return _strip_newline(b"".join(chunks).decode())
    return value


def _float(key: str, value: str, minimum: float, allow_zero: bool) -> float:
    try:
        v = float(value)
    except ValueError:
        raise ParamError(f"{key}: {value!r} is not a number of seconds") from None
    if v != v or v < minimum or (v == 0 and not allow_zero) or v > 86400:
        raise ParamError(f"{key}: {value!r} is out of range")
    return v


def _bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ParamError(f"{key}: {value!r} is not a boolean (true/false)")


def apply(p: Params, key: str, value: str) -> None:
    """Apply one ``key=value`` to ``p``. Raises ParamError."""
    if key == "urls":
        items = [s for s in value.split(",") if s.strip()]
        if not items:
            raise ParamError("urls: empty list")
        p.urls.extend(parse_url(s) for s in items)
    elif key == "user":
        p.user = value
    elif key == "password":
        p.password = read_password(value)
    elif key == "device-size":
        try:
            size = parse_size(value, "device-size")
        except ValueError as e:
            raise ParamError(str(e)) from None
        if size <= 0:
            raise ParamError("device-size: must be positive")
        p.device_size = size
    elif key == "timeout":
        p.timeout = _float(key, value, 0.0, allow_zero=False)
    elif key == "connect-timeout":
        p.connect_timeout = _float(key, value, 0.0, allow_zero=False)
    elif key == "retries":
        try:
            p.retries = int(value)
        except ValueError:
            raise ParamError(f"retries: {value!r} is not an integer") from None
        if not 0 <= p.retries <= 100:
            raise ParamError(f"retries: {value!r} is out of range 0..100")
    elif key == "retry-delay":
        p.retry_delay = _float(key, value, 0.0, allow_zero=True)
    elif key == "clock-skew":
        p.clock_skew = _float(key, value, 0.0, allow_zero=True)
    elif key == "cafile":
        if not os.path.isfile(value):
            raise ParamError(f"cafile: {value!r} is not a readable file")
        p.cafile = value
    elif key == "insecure":
        p.insecure = _bool(key, value)
    elif key == "connections":
        try:
            p.connections = int(value)
        except ValueError:
            raise ParamError(f"connections: {value!r} is not an integer") from None
        if not 1 <= p.connections <= MAX_CONNECTIONS:
            raise ParamError(f"connections: {value!r} is out of range 1..{MAX_CONNECTIONS}")
    else:
        raise ParamError(f"unknown parameter {key!r} (known: {', '.join(KNOWN_KEYS)})")


def finish(p: Params) -> None:
    """Checks that need every parameter. Raises ParamError."""
    if not p.urls:
        raise ParamError("urls= is required (comma-separated http:// or https:// URLs)")
    if p.password is not None and p.user is None:
        raise ParamError("password= given without user=")
    if (p.cafile or p.insecure) and not any(u.scheme == "https" for u in p.urls):
        raise ParamError("cafile=/insecure= need at least one https:// URL")


def parse(pairs: list[tuple[str, str]]) -> Params:
    """Parse a whole parameter list (used by tests and the wrapper)."""
    p = Params()
    for k, v in pairs:
        apply(p, k, v)
    finish(p)
    return p


def plugin_args(p: Params) -> list[str]:
    """``key=value`` plugin parameters that parse back to ``p`` (for nbdkit's command
    line). The password is left out: callers pass it as password=+FILE or -FD, so it
    never appears in a process title."""
    out = ["urls=" + ",".join(u.url for u in p.urls)]
    if p.device_size is not None:
        out.append(f"device-size={p.device_size}")
    if p.user is not None:
        out.append(f"user={p.user}")
    out += [f"timeout={p.timeout}", f"connect-timeout={p.connect_timeout}",
            f"retries={p.retries}", f"retry-delay={p.retry_delay}",
            f"connections={p.connections}", f"clock-skew={p.clock_skew}"]
    if p.cafile is not None:
        out.append(f"cafile={p.cafile}")
    if p.insecure:
        out.append("insecure=true")
    return out


def backoff_delays(p: Params) -> list[float]:
    """Sleeps between the attempts on one server: retry_delay doubling, capped."""
    return [min(p.retry_delay * (2 ** k), MAX_BACKOFF) for k in range(p.retries)]


def worst_case_seconds(p: Params, servers: int | None = None) -> float:
    """Upper bound on the time one request can take before the client gets EIO.

    Each server gets at most 1 + retries attempts plus one immediate retry when
    a pooled keep-alive connection turns out closed.  An attempt on a fresh
    connection to a server not yet checked costs at most: connect, HEAD,
    OPTIONS (and one more connect for servers that close after each reply),
    each within connect-timeout, then the request itself within timeout.  The
    backoff sleeps add up in between.
    """
    n = len(p.urls) if servers is None else servers
    # A write that got no answer waits out its deadline plus the clock skew before the
    # next attempt (runner.py): at most timeout + clock-skew more per attempt.
    per_attempt = 4 * p.connect_timeout + 2 * p.timeout + p.clock_skew
    return n * ((p.retries + 1) * per_attempt + p.timeout + sum(backoff_delays(p)))
