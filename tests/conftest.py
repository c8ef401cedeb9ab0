"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest

from tests.support.archives import catalog


@pytest.fixture(scope="session")
def cat(tmp_path_factory: pytest.TempPathFactory) -> catalog.Catalog:
    """Every archive of the catalogue, packed once per session (a few seconds)."""
    return catalog.build(tmp_path_factory.mktemp("hexz-fixtures"))
