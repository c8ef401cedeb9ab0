"""Framing rules in process: the declared body length, and which headers may appear once
(the HTTP-level behaviour is in test_handler.py and test_images_put.py)."""

from __future__ import annotations

import email.parser

import pytest

from http_disk_server.errors import HTTPError
from http_disk_server.framing import SINGLE, declared_length, repeated_header


def headers(text: str):
    return email.parser.Parser().parsestr(text + "\n\n", headersonly=True)


@pytest.mark.parametrize("name", SINGLE)
def test_each_single_header_repeated_is_named(name):
    assert repeated_header(headers(f"{name}: 1\n{name}: 1")) == name
    assert repeated_header(headers(f"{name.upper()}: 1\n{name.lower()}: 2")) == name
    assert repeated_header(headers(f"{name}: 1")) is None


def test_other_repeated_headers_are_fine():
    assert repeated_header(headers("Accept: a\nAccept: b\nX-Y: 1\nX-Y: 2")) is None


@pytest.mark.parametrize("text,length", [
    ("Content-Length: 0", 0), ("Content-Length:  4096 ", 4096),
    ("Transfer-Encoding: chunked", None), ("Transfer-Encoding: Chunked", None),
])
def test_declared_length(text, length):
    assert declared_length(headers(text)) == length


@pytest.mark.parametrize("text,status", [
    ("", 411),
    ("Content-Length: -1", 400), ("Content-Length: 1e3", 400), ("Content-Length: 4, 4", 400),
    ("Content-Length: " + "9" * 20, 400),
    ("Transfer-Encoding: gzip", 400), ("Transfer-Encoding: chunked, chunked", 400),
    ("Transfer-Encoding: chunked\nContent-Length: 4", 400),
])
def test_declared_length_refusals(text, status):
    with pytest.raises(HTTPError) as exc:
        declared_length(headers(text))
    assert exc.value.status == status
