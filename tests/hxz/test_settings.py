"""hxz.settings: the hexz plugin's parameters, checked before nbdkit serves anything."""

from __future__ import annotations

import pytest

import hxz
from hxz.settings import PluginSettings


def test_stream_words_and_the_error_listing_them():
    s = PluginSettings()
    s.set("stream", "secondary")
    assert s.stream is hxz.StreamId.MEMORY and s.stream_word == "secondary"
    with pytest.raises(ValueError) as ei:
        PluginSettings().set("stream", "auxiliary")
    assert str(ei.value) == ("stream=auxiliary: expected disk or memory (aliases primary, "
                             "secondary)")


@pytest.mark.parametrize("key,value", [("file", "a.hxz"), ("stream", "disk"), ("cache", "1M"),
                                       ("verify", "crc"), ("readahead", "off"),
                                       ("threads", "parallel"), ("decoders", "2")])
def test_each_parameter_at_most_once(key, value):
    s = PluginSettings()
    s.set(key, value)
    with pytest.raises(ValueError, match=f"^{key}= given twice"):
        s.set(key, value)


def test_parent_dir_repeats_and_values_are_parsed():
    s = PluginSettings()
    for k, v in (("parent-dir", "/a"), ("parent-dir", "/b"), ("cache", "8M"),
                 ("readahead", "on"), ("verify", "hash")):
        s.set(k, v)
    assert s.parent_dirs == ["/a", "/b"] and s.cache == 8 << 20 and s.verify == "hash"
    assert s.readahead_window == 2 << 20          # a quarter of the cache at most
    with pytest.raises(ValueError, match="verify=md5: expected crc or hash"):
        PluginSettings().set("verify", "md5")


def test_decoders_is_the_readahead_pool_size(tmp_path):
    s = PluginSettings()
    assert s.decoders == 1
    s.set("decoders", "3")
    assert s.decoders == 3
    for bad in ("0", "17", "-1", "2.5", ""):
        with pytest.raises(ValueError, match=f"^decoders={bad}: expected a whole number "
                                             "from 1 to 16$"):
            PluginSettings().set("decoders", bad)


def test_open_refuses_a_missing_memory_stream(cat):
    s = PluginSettings()
    s.set("file", str(cat["random"].path))
    s.set("stream", "memory")
    with pytest.raises(hxz.FormatError, match="has no memory stream"):
        s.open()
    with pytest.raises(ValueError, match="file=SNAPSHOT.hxz is required"):
        PluginSettings().open()
