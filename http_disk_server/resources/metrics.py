"""``GET /metrics``: the server's metrics in Prometheus text format (metrics.py)."""

from __future__ import annotations

from ..config import Config
from ..exchange import Request, Response
from ..metrics import Metrics
from .views import ServerView


class MetricsResource(ServerView):
    def __init__(self, metrics: Metrics, config: Config) -> None:
        super().__init__(config)
        self._metrics = metrics

    def get(self, req: Request, resp: Response) -> None:
        resp.send(body=self._metrics.render(), content_type=self._metrics.content_type)
