"""What the read-only resources share: which image they look at, and their OPTIONS."""

from __future__ import annotations

from ..config import Config
from ..exchange import Request, Response
from ..storage import Storage
from .images import send_options


class ImageView:
    """A read-only resource about one image (its extents, its checksum). OPTIONS answers
    503 like the image itself while the storage is not open yet."""

    methods = ["OPTIONS", "GET"]

    def __init__(self, storage: Storage, name: str, config: Config) -> None:
        self._storage = storage
        self._name = name
        self._config = config

    def allow(self) -> list[str]:
        return self.methods

    def options(self, req: Request, resp: Response) -> None:
        self._storage.get(self._name)
        send_options(resp, self._config, self.methods)


class ServerView:
    """A read-only resource about the server itself (metrics, checksum algorithms)."""

    methods = ["OPTIONS", "GET"]

    def __init__(self, config: Config) -> None:
        self._config = config

    def allow(self) -> list[str]:
        return self.methods

    def options(self, req: Request, resp: Response) -> None:
        send_options(resp, self._config, self.methods)
