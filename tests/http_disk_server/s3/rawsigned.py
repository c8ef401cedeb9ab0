"""Requests with exact targets (http.client sends them as given), signed by botocore."""

from __future__ import annotations

import hashlib
import http.client
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .conftest import REGION, Keys

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        """The <Code> of an S3 XML error body."""
        if not self.body:
            return None
        return ET.fromstring(self.body).findtext("Code")


def send(url: str, method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes = b"", keys: Keys | None = None) -> Reply:
    """``target`` as is on the request line; signed with ``keys`` unless None."""
    headers = dict(headers or {})
    if keys is not None:
        req = AWSRequest(method=method, url=url + target, headers=headers, data=body)
        req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        S3SigV4Auth(Credentials(keys.access, keys.secret), "s3", REGION).add_auth(req)
        headers = {k: (v.decode() if isinstance(v, bytes) else v)
                   for k, v in req.headers.items()}
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def open_slow_get(url: str, path: str, keys: Keys, *, close: bool = False) -> socket.socket:
    """Send a signed GET of ``path`` on a raw socket with a small receive buffer and return
    the socket unread: the caller reads the reply as slowly as it likes (a read in flight)."""
    u = urlsplit(url)
    req = AWSRequest(method="GET", url=url.rstrip("/") + path)
    req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    S3SigV4Auth(Credentials(keys.access, keys.secret), "s3", REGION).add_auth(req)
    sock = socket.create_connection((u.hostname, u.port), timeout=20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    head = "".join(f"{k}: {v}\r\n" for k, v in req.headers.items())
    extra = "Connection: close\r\n" if close else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\n{head}{extra}\r\n".encode())
    return sock
