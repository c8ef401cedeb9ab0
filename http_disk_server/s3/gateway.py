"""What ``--s3 DIR`` starts with: its settings, checked, and the router built from them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..config import Config
from .app import S3App
from .catalog import Catalog
from .credentials import Credentials
from .sigv4 import Verifier

DEFAULT_BUCKET = "images"
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Settings:
    root: str
    bucket: str = DEFAULT_BUCKET
    credentials: str | None = None   # path of the credentials file
    anonymous: bool = False
    verify: str = "crc"

    def check(self) -> None:
        """Raises ValueError with a one-line reason."""
        if not _BUCKET_RE.fullmatch(self.bucket) or ".." in self.bucket:
            raise ValueError(f"--bucket {self.bucket!r} is not a valid S3 bucket name "
                             "(3-63 of a-z 0-9 . -, starting and ending with a letter or "
                             "digit)")
        if self.credentials is None and not self.anonymous:
            raise ValueError("--s3 needs --credentials FILE, or --s3-anonymous to serve "
                             "unsigned requests")
        if not os.path.isdir(self.root):
            raise ValueError(f"--s3 {self.root}: not a directory")


def open_gateway(settings: S3Settings, config: Config) -> tuple[S3App, Catalog]:
    """The S3 router over DIR and its catalog (close it at the end). ValueError or
    OSError with a one-line reason when something is unusable."""
    settings.check()
    creds = Credentials.from_file(settings.credentials) if settings.credentials else None
    verifier = Verifier(creds, settings.anonymous)
    catalog = Catalog(settings.root, verify=settings.verify)
    catalog.listing()   # the first scan: archives that do not open are reported now
    created = os.stat(settings.root).st_mtime
    return S3App(catalog, settings.bucket, verifier, config, created), catalog
