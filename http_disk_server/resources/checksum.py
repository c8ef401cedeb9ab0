"""``GET <image>/checksum`` and ``GET /checksum/algorithms``, as ovirt-imageio answers
them: same query parameters (``algorithm``, ``block_size``), same JSON, same algorithm
(nbdsuite/blkhash.py).  Zero and hole extents are hashed without reading them."""

from __future__ import annotations

from http import HTTPStatus

from nbdsuite import blkhash

from ..errors import HTTPError
from ..exchange import Request, Response
from .views import ImageView, ServerView


class ChecksumResource(ImageView):
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


class AlgorithmsResource(ServerView):
    """Server information: which algorithms ``?algorithm=`` takes."""

    def get(self, req: Request, resp: Response) -> None:
        resp.send_json({"algorithms": sorted(blkhash.ALGORITHMS)})
