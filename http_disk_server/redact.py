"""Masks credentials in request targets before they reach a log line.

A presigned S3 URL is a bearer credential until it expires: its signature (and the key
id beside it) must not be copied into logs, where anyone reading them could replay it.
"""

from __future__ import annotations

import re

#: Query parameters whose values are credentials (SigV4 and SigV2 presigned URLs).
_SECRET_PARAMS = re.compile(
    r"(?i)([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
    r"AWSAccessKeyId)=)[^&\s]*")


def redact_target(text: str) -> str:
    """``text`` (a request line or target) with credential values replaced by ``***``."""
    return _SECRET_PARAMS.sub(r"\1***", text)
