"""Parameters of a remote archive: where it is and how to reach it.

The HTTP client's parameters are the multihttp plugin's (``multihttp.params``), with
the same names, forms and limits: user=, password= (literal, -, +FILE, -FD), cafile=,
insecure=, timeout=, connect-timeout=, retries=, retry-delay=, connections=.  S3 adds
endpoint-url=, region=, access-key= and secret-key= (the names of nbdkit's S3 plugin;
without them the standard AWS chain applies), and thin archives add parent-url=NAME=URL.

Secrets (password, secret key, session token) never appear in a repr or a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from multihttp import params as http_params
from multihttp.params import ParamError, Params, read_password

__all__ = ["HTTP_KEYS", "REMOTE_KEYS", "ParamError", "RemoteSettings", "safe_url",
           "split_urls"]

HTTP_KEYS = ("user", "password", "cafile", "insecure", "timeout", "connect-timeout",
             "retries", "retry-delay", "connections")
S3_KEYS = ("endpoint-url", "region", "access-key", "secret-key", "session-token")
REMOTE_KEYS = ("url", *HTTP_KEYS, *S3_KEYS, "parent-url")
SCHEMES = ("http", "https", "s3")


def safe_url(url: str) -> str:
    """``url`` fit for messages: no userinfo, no query (a presigned URL's query is its
    signature), no fragment."""
    try:
        p = urlsplit(url)
        host = p.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if p.port is None else f"{host}:{p.port}"
    except ValueError:
        return "<malformed URL>"
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


def split_urls(value: str, key: str = "url") -> list[str]:
    """A comma-separated list of mirror URLs, checked for scheme and host."""
    items = [s.strip() for s in value.split(",") if s.strip()]
    if not items:
        raise ParamError(f"{key}: empty list")
    for u in items:
        p = http_params.check_url(u, key, SCHEMES, safe_url(u),
                                  "user= and password= (or access-key=/secret-key=)")
        if p.scheme == "s3" and not p.path.strip("/"):
            raise ParamError(f"{key}: {safe_url(u)}: expected s3://BUCKET/KEY")
    kinds = {urlsplit(u).scheme == "s3" for u in items}
    if len(kinds) > 1 or (True in kinds and len(items) > 1):
        raise ParamError(f"{key}: one s3:// URL, or a list of http(s):// mirrors, not both")
    return items


def _secret(key: str, value: str) -> str:
    """A secret in any of the password forms (literal, -, +FILE, -FD)."""
    try:
        return read_password(value)
    except ParamError as e:
        raise ParamError(str(e).replace("password:", f"{key}:", 1)) from None


@dataclass
class RemoteSettings:
    urls: list[str] = field(default_factory=list)
    http: Params = field(default_factory=Params)
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    # parent name as recorded in a child (or its base name) -> mirror URLs
    parent_urls: dict[str, list[str]] = field(default_factory=dict)

    def __repr__(self) -> str:
        parents = {k: [safe_url(u) for u in v] for k, v in self.parent_urls.items()}
        return (f"RemoteSettings(urls={[safe_url(u) for u in self.urls]}, http={self.http!r}, "
                f"endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
                f"access_key={'<set>' if self.access_key else None}, "
                f"secret_key={'<set>' if self.secret_key else None}, "
                f"parent_urls={parents})")

    __str__ = __repr__

    def apply(self, key: str, value: str) -> None:
        """Apply one plugin parameter. Raises ParamError (one line, no secret)."""
        if key == "url":
            self.urls.extend(split_urls(value))
        elif key in HTTP_KEYS:
            http_params.apply(self.http, key, value)
        elif key == "endpoint-url":
            p = urlsplit(value)
            if p.scheme not in ("http", "https") or not p.hostname:
                raise ParamError(f"endpoint-url: {safe_url(value)!r} is not an http(s) URL")
            self.endpoint_url = value
        elif key == "region":
            self.region = value
        elif key == "access-key":
            self.access_key = value
        elif key == "secret-key":
            self.secret_key = _secret(key, value)
        elif key == "session-token":
            self.session_token = _secret(key, value)
        elif key == "parent-url":
            name, sep, urls = value.partition("=")
            if not sep or not name or not urls:
                raise ParamError("parent-url: expected NAME=URL (NAME as recorded in the "
                                 "child, or its base name)")
            self.parent_urls[name] = split_urls(urls, "parent-url")
        else:
            raise ParamError(f"unknown parameter {key!r}")

    def finish(self) -> None:
        """Checks across parameters. Raises ParamError."""
        h = self.http
        if h.password is not None and h.user is None:
            raise ParamError("password= given without user=")
        if (self.access_key is None) != (self.secret_key is None):
            raise ParamError("access-key= and secret-key= go together")
        every = list(self.urls) + [u for v in self.parent_urls.values() for u in v]
        if (h.cafile or h.insecure) and not any(u.startswith(("https:", "s3:")) for u in every):
            raise ParamError("cafile=/insecure= need an https:// or s3:// URL")

    def is_s3(self, urls: list[str]) -> bool:
        return bool(urls) and urls[0].startswith("s3:")
