"""Fixtures shared by every test folder."""

from __future__ import annotations

import os

import pytest

from nbdsuite.launch import nbdkit_env
from tests.support.archives import catalog

# Every nbdkit the tests start inherits this: /usr/bin first on PATH, and the venv's
# packages (blake3) visible to the embedded interpreter.
os.environ.update(nbdkit_env())


@pytest.fixture(scope="session")
def cat(tmp_path_factory: pytest.TempPathFactory) -> catalog.Catalog:
    """Every archive of the catalogue, packed once per session (a few seconds)."""
    return catalog.build(tmp_path_factory.mktemp("hexz-fixtures"))
