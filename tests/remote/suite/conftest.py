"""The hexz plugin's own NBD tests, run again with every archive behind nginx (url=).

``serve(name, *params)`` here starts ``hexz.py url=NGINX/NAME.hxz`` instead of
``file=NAME.hxz``; the test functions themselves are imported unchanged from
tests/plugins/hexz, so the local and the remote paths are held to one suite.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest

from tests.support.nbd import Server


class UrlServerPool:
    """nbdkit servers shared by the tests of a session, one per (archive, parameters);
    at most MAX_LIVE at once."""

    MAX_LIVE = 6

    def __init__(self, root, base_url: str) -> None:
        self.root = root
        self.base_url = base_url
        self.servers: OrderedDict[tuple, Server] = OrderedDict()
        self.started = 0
        self.problems: list[str] = []

    def get(self, path, *params: str) -> Server:
        key = (path.name, params)
        srv = self.servers.get(key)
        if srv is not None and srv.proc.poll() is None:
            self.servers.move_to_end(key)
            return srv
        if srv is not None:
            self._retire(key)
        while len(self.servers) >= self.MAX_LIVE:
            self._retire(next(iter(self.servers)))
        self.started += 1
        srv = Server(self.root / f"u{self.started}", None, f"url={self.base_url}{path.name}",
                     *params)
        self.servers[key] = srv
        return srv

    def _retire(self, key: tuple) -> None:
        srv = self.servers.pop(key)
        was_running = srv.proc.poll() is None
        rc = srv.stop()
        if not was_running or rc != 0:
            self.problems.append(f"{key}: nbdkit died or exited {rc}:\n{srv.log_text()[-2000:]}")

    def stop_all(self) -> list[str]:
        while self.servers:
            self._retire(next(iter(self.servers)))
        return self.problems


@pytest.fixture(scope="session")
def url_pool(cat_nginx, tmp_path_factory):
    p = UrlServerPool(tmp_path_factory.mktemp("hexz-url-servers"), cat_nginx.url)
    yield p
    problems = p.stop_all()
    assert not problems, "\n".join(problems)


@pytest.fixture
def serve(cat, url_pool):
    def _serve(name: str, *params: str) -> Server:
        return url_pool.get(cat[name].path, *params)
    return _serve
