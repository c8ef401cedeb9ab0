"""nbdsuite.httprange, the one Range / Content-Range grammar of the suite, checked directly
(the HTTP tests cover the wiring)."""

import pytest

from nbdsuite.httprange import (
    ContentRange,
    MalformedRange,
    UnsatisfiableRange,
    format_content_range,
    format_unsatisfied,
    parse_content_range,
    parse_put_offset,
    parse_range,
)

SIZE = 1000


@pytest.mark.parametrize("value,expected", [
    ("bytes=0-0", (0, 0)),              # first byte
    ("bytes=999-999", (999, 999)),      # last byte
    ("bytes=10-19", (10, 19)),
    ("bytes=990-1000", (990, 999)),     # nbdkit-curl style exclusive end: clamped
    ("bytes=0-5000", (0, 999)),         # past the end: clamped
    ("bytes=500-", (500, 999)),         # open end
    ("bytes=-1", (999, 999)),           # suffix
    ("bytes=-10", (990, 999)),
    ("bytes=-5000", (0, 999)),          # suffix longer than the device
    (" bytes = 1 - 2 ", (1, 2)),
    ("BYTES=1-2", (1, 2)),
])
def test_satisfiable(value, expected):
    assert parse_range(value, SIZE) == expected


@pytest.mark.parametrize("value", ["bytes=1000-", "bytes=1000-1001", "bytes=5000-6000",
                                   "bytes=-0", "bytes=0-1,5-6", "bytes=0-1, 10-"])
def test_unsatisfiable(value):
    with pytest.raises(UnsatisfiableRange) as exc:
        parse_range(value, SIZE)
    assert exc.value.size == SIZE     # for the 416 reply's "Content-Range: bytes */SIZE"


def test_empty_device_is_unsatisfiable():
    with pytest.raises(UnsatisfiableRange):
        parse_range("bytes=0-", 0)


@pytest.mark.parametrize("value", ["bytes=", "bytes=-", "bytes=a-b", "items=0-1", "0-1",
                                   "bytes=5-4", "bytes=0x1-2", "bytes=1-2-3", "bytes=+1-2"])
def test_malformed(value):
    with pytest.raises(MalformedRange):
        parse_range(value, SIZE)


@pytest.mark.parametrize("value,offset", [
    ("bytes 0-4095/8192", 0),
    ("bytes 4096-8191/*", 4096),
    ("bytes 4096-8192/-1", 4096),       # nbdkit-curl's form
])
def test_put_offset(value, offset):
    assert parse_put_offset(value) == offset


@pytest.mark.parametrize("value", ["bytes=0-1", "bytes 5-4/*", "bytes 1-2", "0-1/*",
                                   "bytes a-b/*"])
def test_put_offset_malformed(value):
    with pytest.raises(MalformedRange):
        parse_put_offset(value)


@pytest.mark.parametrize("value,expected", [
    ("bytes 0-4095/8192", ContentRange(0, 4095, 8192)),
    ("bytes 4096-8191/*", ContentRange(4096, 8191, None)),
    (" bytes 7-7/8 ", ContentRange(7, 7, 8)),
])
def test_parse_content_range(value, expected):
    got = parse_content_range(value)
    assert got == expected and got.length == expected.last - expected.first + 1


@pytest.mark.parametrize("value", ["bytes 5-4/10", "bytes 0-10/10", "bytes 0-1/-1",
                                   "bytes=0-1/10", "bytes */10", "bytes 0-1", "bytes  0-1/10"])
def test_parse_content_range_is_strict(value):
    """Responses are checked strictly (no nbdkit-curl leniency there)."""
    with pytest.raises(ValueError):
        parse_content_range(value)


def test_formats_round_trip():
    assert format_content_range(0, 4095, 8192) == "bytes 0-4095/8192"
    assert format_content_range(1, 2, None) == "bytes 1-2/*"
    assert parse_content_range(format_content_range(9, 99, 100)) == ContentRange(9, 99, 100)
    assert format_unsatisfied(123) == "bytes */123"
