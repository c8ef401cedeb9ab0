"""``GET /metrics``: the server's metrics in Prometheus text format (metrics.py)."""

from __future__ import annotations

from ..config import Config
from ..exchange import Request, Response
from ..metrics import Metrics
from .images import send_options

ALLOW = ["OPTIONS", "GET"]


class MetricsResource:
    def __init__(self, metrics: Metrics, config: Config) -> None:
        self._metrics = metrics
        self._config = config

    def allow(self) -> list[str]:
        return ALLOW

    def options(self, req: Request, resp: Response) -> None:
        send_options(resp, self._config, ALLOW)

    def get(self, req: Request, resp: Response) -> None:
        resp.send(body=self._metrics.render(), content_type=self._metrics.content_type)
