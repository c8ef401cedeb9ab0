"""Plugin parameters: bad or missing ones make nbdkit refuse to start with one clear line."""

from __future__ import annotations

import pytest

from tests.support.archives import corrupt
from tests.support.nbd import assert_one_clear_line, try_start


def test_good_parameters_start(cat, tmp_path):
    # the refusal tests below are only meaningful if a good configuration does start
    r = try_start(tmp_path, cat["dir"].path, "stream=memory", "cache=2M",
                  f"parent-dir={tmp_path}")
    assert r.returncode == 0, r.stderr


def test_missing_file_parameter(tmp_path):
    r = try_start(tmp_path, None)
    assert_one_clear_line(r, "file")


def test_nonexistent_file(tmp_path):
    missing = tmp_path / "nope" / "disk.hxz"
    r = try_start(tmp_path, missing)
    assert_one_clear_line(r, str(missing))


def test_file_is_a_directory(tmp_path):
    d = tmp_path / "adir.hxz"
    d.mkdir()
    r = try_start(tmp_path, d)
    assert_one_clear_line(r, "adir.hxz")


def test_not_an_archive(tmp_path):
    p = tmp_path / "plain.img"
    p.write_bytes(b"\x00" * 8192)
    r = try_start(tmp_path, p)
    assert_one_clear_line(r, "plain.img")


@pytest.mark.parametrize("value", ["bogus", "Disk", ""])
def test_unknown_stream(cat, tmp_path, value):
    r = try_start(tmp_path, cat["random"].path, f"stream={value}")
    assert_one_clear_line(r, "stream")


@pytest.mark.parametrize("value", ["lots", "-1", "12Q", ""])
def test_bad_cache(cat, tmp_path, value):
    r = try_start(tmp_path, cat["random"].path, f"cache={value}")
    assert_one_clear_line(r, "cache")


@pytest.mark.parametrize("param", ["threads=bogus", "readahead=lots"])
def test_bad_tuning_parameters(cat, tmp_path, param):
    """The plugin's optional tuning knobs (threads=, readahead=) are validated too."""
    r = try_start(tmp_path, cat["random"].path, param)
    assert_one_clear_line(r, param.split("=")[0])


@pytest.mark.parametrize("params", [("threads=parallel", "readahead=off"),
                                    ("threads=serialize", "readahead=1M"),
                                    ("readahead=on",)])
def test_tuning_parameters_serve_correctly(cat, tmp_path, params):
    from tests.support.nbd import Server

    fx = cat["text"]
    srv = Server(tmp_path / "srv", fx.path, *params)
    try:
        with srv.client() as c:
            assert c.pread(len(fx.primary), 0) == fx.primary
    finally:
        assert srv.stop() == 0


def test_unknown_parameter(cat, tmp_path):
    r = try_start(tmp_path, cat["random"].path, "colour=blue")
    assert_one_clear_line(r, "colour")


def test_fifo_refused_not_hung(tmp_path):
    """file= naming a FIFO (or anything that is not a regular file) must be refused at once;
    opening it for reading would block nbdkit's start forever."""
    import os

    fifo = tmp_path / "pipe.hxz"
    os.mkfifo(fifo)
    r = try_start(tmp_path, fifo, timeout=15)
    assert_one_clear_line(r, "pipe.hxz")


@pytest.mark.parametrize("param", ["file", "stream", "cache", "verify", "readahead",
                                   "threads"])
def test_parameter_given_twice_is_refused(cat, tmp_path, param):
    """Keeping either of two different files or streams would serve the wrong disk."""
    values = {"file": (f"file={cat['text'].path}", f"file={cat['random'].path}"),
              "stream": ("stream=disk", "stream=memory"), "cache": ("cache=8M", "cache=16M"),
              "verify": ("verify=crc", "verify=hash"), "readahead": ("readahead=on",
                                                                    "readahead=off"),
              "threads": ("threads=serialize", "threads=parallel")}[param]
    file = None if param == "file" else cat["dir"].path
    r = try_start(tmp_path, file, *values)
    assert_one_clear_line(r, f"{param}= given twice")


def test_parent_dir_may_repeat(cat, tmp_path):
    r = try_start(tmp_path, cat["random"].path, f"parent-dir={tmp_path}",
                  f"parent-dir={tmp_path.parent}")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["memory", "secondary"])
def test_memory_stream_of_an_archive_without_one_is_refused(cat, tmp_path, name):
    r = try_start(tmp_path, cat["text"].path, f"stream={name}")
    err = assert_one_clear_line(r, "no memory stream", cat["text"].path.name)
    assert "expected" not in err


def test_unknown_stream_names_the_accepted_ones(cat, tmp_path):
    r = try_start(tmp_path, cat["random"].path, "stream=swap")
    assert_one_clear_line(r, "disk or memory", "primary", "secondary")


@pytest.mark.parametrize("value", ["sha256", "", "HASH", "none"])
def test_bad_verify(cat, tmp_path, value):
    r = try_start(tmp_path, cat["random"].path, f"verify={value}")
    assert_one_clear_line(r, "verify", "crc or hash")


@pytest.mark.parametrize("claimed", ["2**63", "2**64-1", "size+4096", "size-1"])
def test_impossible_stream_size_is_refused_at_start(cat, tmp_path, claimed):
    """A size NBD cannot carry, or one the index does not cover, never starts a server."""
    fx = cat["multipage"]
    size = len(fx.primary)
    value = eval(claimed, {"size": size})     # noqa: S307 - a literal table above
    bad = tmp_path / "size.hxz"
    corrupt.set_stream_size(fx.path, bad, 0, value)
    r = try_start(tmp_path, bad)
    assert_one_clear_line(r, "size.hxz", str(value))
