"""Chunked and fixed-length body decoding, on in-memory streams."""

from __future__ import annotations

import io

import pytest

from http_disk_server.body import BodyAborted, BodyError, read_chunked, read_exact


def rf(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data))


def test_chunked_with_extensions_and_trailers():
    f = rf(b"5;a=b;c\r\nhello\r\n6 ; q=\"x;y\"\r\n world\r\n0;end=1\r\nX-T: 1\r\nY: 2\r\n\r\nNEXT")
    assert read_chunked(f, 100) == b"hello world"
    assert f.read() == b"NEXT"     # stops exactly at the end of the message


def test_chunked_uppercase_hex_and_bare_lf():
    assert read_chunked(rf(b"A\nabcdefghij\n0\n\n"), 100) == b"abcdefghij"


@pytest.mark.parametrize("data,status", [
    (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    (b"+5\r\nhello\r\n0\r\n\r\n", 400),
    (b"5_0\r\nhello\r\n0\r\n\r\n", 400),
    (b"\r\nhello\r\n0\r\n\r\n", 400),
    (b"3\r\nhello\r\n0\r\n\r\n", 400),             # data longer than declared
    (b"1" * 2000 + b"\r\n", 400),                   # size line too long
    (b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", 413),   # over the limit of 10
    (b"0\r\n" + b"X: 1\r\n" * 40 + b"\r\n", 400),   # too many trailer lines
    (b"fffffffffffffffff\r\n", 400),                # absurd size
])
def test_chunked_malformed(data, status):
    with pytest.raises(BodyError) as exc:
        read_chunked(rf(data), 10 if status == 413 else 1 << 20)
    assert exc.value.status == status


@pytest.mark.parametrize("data", [b"", b"5\r\nhel", b"5\r\nhello", b"5\r\nhello\r\n",
                                  b"0\r\nX: 1\r\n"])
def test_chunked_truncated(data):
    with pytest.raises(BodyAborted):
        read_chunked(rf(data), 100)


def test_read_exact():
    assert read_exact(rf(b"abcdef"), 4) == b"abcd"
    with pytest.raises(BodyAborted):
        read_exact(rf(b"abc"), 4)
