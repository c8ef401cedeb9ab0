"""Fixtures of the nbd-http-server tests."""

from tests.multihttp.conftest import fake  # noqa: F401 - a fixture, re-exported
