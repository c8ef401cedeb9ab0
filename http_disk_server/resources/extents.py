"""``GET <image>/extents``: the allocation map of one backend, as
``[{"start","length","zero","hole"}]`` (SEEK_DATA/SEEK_HOLE for files, the index for
snapshots, one data extent for block devices)."""

from __future__ import annotations

from ..config import Config
from ..exchange import Request, Response
from ..storage import Storage
from .images import send_options

ALLOW = ["OPTIONS", "GET", "HEAD"]


class ExtentsResource:
    def __init__(self, storage: Storage, name: str, config: Config) -> None:
        self._storage = storage
        self._name = name
        self._config = config

    def allow(self) -> list[str]:
        return ALLOW

    def options(self, req: Request, resp: Response) -> None:
        self._storage.get(self._name)
        send_options(resp, self._config, ALLOW)

    def get(self, req: Request, resp: Response) -> None:
        backend = self._storage.get(self._name)
        resp.send_json([e.to_json() for e in backend.extents()])

    head = get
