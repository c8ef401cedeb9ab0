"""``GET <image>/extents``: the allocation map of one backend, as
``[{"start","length","zero","hole"}]`` (SEEK_DATA/SEEK_HOLE for files, the index for
snapshots, one data extent for block devices)."""

from __future__ import annotations

from ..exchange import Request, Response
from .views import ImageView


class ExtentsResource(ImageView):
    methods = ["OPTIONS", "GET", "HEAD"]

    def get(self, req: Request, resp: Response) -> None:
        backend = self._storage.get(self._name)
        resp.send_json([e.to_json() for e in backend.extents()])

    head = get
