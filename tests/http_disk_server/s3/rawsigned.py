"""Requests with exact targets (http.client sends them as given), signed by botocore."""

from __future__ import annotations

import hashlib
import http.client
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
