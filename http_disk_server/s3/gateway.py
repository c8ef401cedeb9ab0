"""What ``--s3 DIR`` starts with: its settings, checked, and the router built from them.

Beside the bucket the server keeps one path of its own, ``GET /metrics`` (Prometheus text,
as for the disk API).  A scraper cannot sign SigV4, so that path is served behind HTTP
Basic auth (``--user``/``--password-file``), or openly when the bucket itself is anonymous
(``--s3-anonymous`` without ``--user``), and not at all otherwise: then ``/metrics`` is an
S3 path like any other.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..config import Config
from ..exchange import Request, Response
from ..metrics import Metrics
from ..resources.metrics import MetricsResource
from ..router import Router
from .app import S3App
from .catalog import Catalog
from .credentials import Credentials
from .sigv4 import Verifier

DEFAULT_BUCKET = "images"
METRICS_PATH = "/metrics"
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Settings:
    root: str
    bucket: str = DEFAULT_BUCKET
    credentials: str | None = None   # path of the credentials file
    anonymous: bool = False
    verify: str = "crc"

    def check(self, config: Config) -> None:
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
        if config.auth is not None and not config.metrics:
            raise ValueError("--user and --password-file protect only GET /metrics with "
                             "--s3 (S3 requests are signed with --credentials): nothing "
                             "to protect with --no-metrics")
        if self.bucket == METRICS_PATH[1:] and self.serves_metrics(config):
            raise ValueError(f"--bucket {self.bucket} would hide GET /metrics: name the "
                             "bucket otherwise, or give --no-metrics")

    def serves_metrics(self, config: Config) -> bool:
        """Whether GET /metrics is served beside the bucket (see the module docstring)."""
        return config.metrics and (config.auth is not None or self.anonymous)


class WithMetrics:
    """The S3 face with the server's ``GET /metrics`` beside it: that one path goes to the
    metrics resource, behind the Basic auth of ``config.auth`` if any; every other
    request, and every refusal of the HTTP layer, is the S3 face's."""

    def __init__(self, s3: S3App, metrics: Router) -> None:
        self._s3 = s3
        self._metrics = metrics

    def __call__(self, req: Request, resp: Response) -> None:
        if req.target.partition("?")[0] == METRICS_PATH:
            self._metrics(req, resp)
        else:
            self._s3(req, resp)

    def protocol_error(self, resp: Response, target: str, status: int, reason: str) -> None:
        self._s3.protocol_error(resp, target, status, reason)


def open_gateway(settings: S3Settings, config: Config, metrics: Metrics
                 ) -> tuple[S3App | WithMetrics, Catalog]:
    """The S3 router over DIR (with GET /metrics beside it when settings allow) and its
    catalog (close it at the end). ValueError or OSError with a one-line reason when
    something is unusable."""
    settings.check(config)
    creds = Credentials.from_file(settings.credentials) if settings.credentials else None
    verifier = Verifier(creds, settings.anonymous)
    catalog = Catalog(settings.root, verify=settings.verify)
    catalog.listing()   # the first scan: archives that do not open are reported now
    created = os.stat(settings.root).st_mtime
    app = S3App(catalog, settings.bucket, verifier, config, created)
    if not settings.serves_metrics(config):
        return app, catalog
    router = Router([(METRICS_PATH, MetricsResource(metrics, config))], auth=config.auth,
                    verbose=config.verbose)
    return WithMetrics(app, router), catalog
