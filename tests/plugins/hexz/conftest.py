"""Shared fixtures of the hexz tests: the packed archives and a pool of nbdkit servers."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest

from tests.support.archives import catalog
from tests.support.nbd import Server


class ServerPool:
    """nbdkit servers shared by the tests of a session, one per (archive, parameters).

    At most MAX_LIVE run at once (least recently used ones are stopped), so a session does
    not keep dozens of Python-embedding nbdkit processes around on a shared machine.
    """

    MAX_LIVE = 6

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: OrderedDict[tuple, Server] = OrderedDict()
        self.started = 0
        self.problems: list[str] = []

    def get(self, path: Path, *params: str) -> Server:
        key = (str(path), params)
        srv = self.servers.get(key)
        if srv is not None and srv.proc.poll() is None:
            self.servers.move_to_end(key)
            return srv
        if srv is not None:
            self._retire(key)
        while len(self.servers) >= self.MAX_LIVE:
            self._retire(next(iter(self.servers)))
        self.started += 1
        srv = Server(self.root / f"s{self.started}", path, *params)
        self.servers[key] = srv
        return srv

    def _retire(self, key: tuple) -> None:
        srv = self.servers.pop(key)
        was_running = srv.proc.poll() is None
        rc = srv.stop()
        if not was_running:
            self.problems.append(f"{key}: nbdkit died while serving (rc {rc}):\n"
                                 f"{srv.log_text()[-2000:]}")
        elif rc != 0:
            self.problems.append(f"{key}: exit status {rc} after SIGTERM")

    def stop_all(self) -> list[str]:
        while self.servers:
            self._retire(next(iter(self.servers)))
        return self.problems


@pytest.fixture(scope="session")
def pool(tmp_path_factory: pytest.TempPathFactory):
    p = ServerPool(tmp_path_factory.mktemp("hexz-servers"))
    yield p
    problems = p.stop_all()
    # Shutting down cleanly on SIGTERM, and never crashing while serving, is part of the contract.
    assert not problems, "\n".join(problems)


@pytest.fixture
def serve(cat: catalog.Catalog, pool: ServerPool):
    """serve(name, *params) -> a running Server for catalogue archive `name`."""

    def _serve(name: str, *params: str) -> Server:
        return pool.get(cat[name].path, *params)

    return _serve
