"""``GET /info`` (what is served, and why not yet) and ``OPTIONS *`` (the server's
capabilities, whatever the resource)."""

from __future__ import annotations

from ..config import Config
from ..exchange import Request, Response
from ..storage import Storage
from .images import allowed, send_options

ALLOW = ["OPTIONS", "GET", "HEAD"]


class InfoResource:
    """``paths`` maps each image path to its backend's name; ``metadata`` is added as is
    (a snapshot's header, streams and parent chain)."""

    def __init__(self, storage: Storage, paths: dict[str, str], config: Config,
                 metadata: dict | None = None) -> None:
        self._storage = storage
        self._paths = dict(paths)
        self._config = config
        self._metadata = dict(metadata or {})

    def allow(self) -> list[str]:
        return ALLOW

    def options(self, req: Request, resp: Response) -> None:
        send_options(resp, self._config, ALLOW)

    def get(self, req: Request, resp: Response) -> None:
        cfg = self._config
        info: dict = {"read_only": cfg.read_only, "max_put_size": cfg.max_put_size,
                      "ready": self._storage.ready}
        if self._storage.ready:
            info["routes"] = {path: self._storage.get(name).info()
                              for path, name in self._paths.items()}
        else:
            info["reason"] = self._storage.reason
        info.update(self._metadata)
        resp.send_json(info)

    head = get


class ServerOptions:
    """``OPTIONS *``: what the server as a whole allows."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def allow(self) -> list[str]:
        return allowed(self._config.read_only)

    def options(self, req: Request, resp: Response) -> None:
        send_options(resp, self._config, self.allow())
