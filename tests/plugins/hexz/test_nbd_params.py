"""Plugin parameters: bad or missing ones make nbdkit refuse to start with one clear line."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("param", ["threads=bogus", "readahead=lots", "decoders=0",
                                   "decoders=17", "decoders=two"])
def test_bad_tuning_parameters(cat, tmp_path, param):
    """The plugin's optional tuning knobs (threads=, readahead=, decoders=) are validated
    too."""
    r = try_start(tmp_path, cat["random"].path, param)
    assert_one_clear_line(r, param.split("=")[0])


@pytest.mark.parametrize("params", [("threads=parallel", "readahead=off"),
                                    ("threads=serialize", "readahead=1M"),
                                    ("readahead=on", "decoders=4")])
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


@pytest.mark.parametrize("value", ["memory", "secondary"])
def test_memory_stream_missing_refused(cat, tmp_path, value):
    """A single-file archive has no memory stream: serving it would be a 0-byte export."""
    r = try_start(tmp_path, cat["random"].path, f"stream={value}")
    assert_one_clear_line(r, "memory", cat["random"].path.name)


@pytest.mark.parametrize("params", [("stream=disk", "stream=memory"), ("cache=1M", "cache=2M"),
                                    ("readahead=off", "readahead=on"),
                                    ("threads=parallel", "threads=parallel")])
def test_parameter_given_twice_refused(cat, tmp_path, params):
    r = try_start(tmp_path, cat["dir"].path, *params)
    assert_one_clear_line(r, params[0].split("=")[0], "twice")


def test_file_given_twice_refused(cat, tmp_path):
    r = try_start(tmp_path, cat["dir"].path, f"file={cat['random'].path}")
    assert_one_clear_line(r, "file", "twice")


def test_parent_dir_may_repeat(cat, tmp_path):
    r = try_start(tmp_path, cat["thin"].path, f"parent-dir={tmp_path}",
                  f"parent-dir={cat['thin_base'].path.parent}")
    assert r.returncode == 0, r.stderr
