"""``GET <image>/checksum`` and ``GET /checksum/algorithms``, as ovirt-imageio answers
them: same query parameters (``algorithm``, ``block_size``), same JSON, same algorithm
(nbdsuite/blkhash.py).  Zero and hole extents are hashed without reading them."""

from __future__ import annotations

from http import HTTPStatus

from nbdsuite import blkhash

from ..config import Config
from ..errors import HTTPError
from ..exchange import Request, Response
from ..storage import Storage
from .images import send_options

ALLOW = ["OPTIONS", "GET"]


class ChecksumResource:
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
        algorithm = req.query("algorithm", blkhash.DEFAULT_ALGORITHM)
        text = req.query("block_size", str(blkhash.DEFAULT_BLOCK_SIZE))
        try:
            block_size = int(text)
            blkhash.check_request(algorithm, block_size)
        except ValueError as e:
            reason = f"invalid block_size {text!r}" if not text.isdigit() else str(e)
            raise HTTPError(HTTPStatus.BAD_REQUEST, reason) from None
        backend = self._storage.get(self._name)
        extents = ((e.start, e.length, e.zero) for e in backend.extents())
        resp.send_json(blkhash.checksum(backend.size, extents, backend.readinto,
                                        algorithm, block_size))


class AlgorithmsResource:
    """Server information: which algorithms ``?algorithm=`` takes."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def allow(self) -> list[str]:
        return ALLOW

    def options(self, req: Request, resp: Response) -> None:
        send_options(resp, self._config, ALLOW)

    def get(self, req: Request, resp: Response) -> None:
        resp.send_json({"algorithms": sorted(blkhash.ALGORITHMS)})
