"""Fixtures of the remote-source tests: the catalogue behind nginx and in a moto bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdsuite.launch import NginxProcess
from tests.remote.support import BUCKET, Moto, start_moto


@pytest.fixture(scope="session")
def cat_nginx(cat, tmp_path_factory):
    """nginx serving the catalogue's archives (read-only: never modified by tests)."""
    ng = NginxProcess(Path(cat.root) / "hxz", tmp_path_factory.mktemp("nginx-cat"))
    yield ng
    ng.stop()


@pytest.fixture
def nginx(tmp_path):
    """A factory of nginx servers on folders of the test's own."""
    made = []

    def start(root: Path, name: str = "nginx") -> NginxProcess:
        ng = NginxProcess(root, tmp_path / name)
        made.append(ng)
        return ng
    yield start
    for ng in made:
        ng.stop()


@pytest.fixture(scope="session")
def moto(cat, tmp_path_factory) -> Moto:
    """moto S3 with signatures enforced; the catalogue uploaded under cat/."""
    m = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        s3 = m.client()
        for p in sorted((Path(cat.root) / "hxz").glob("*.hxz")):
            s3.upload_file(str(p), BUCKET, f"cat/{p.name}")
        yield m
    finally:
        m.stop()
