# nbdkit python plugin used by bench/bench_remote.py: a raw image served through the same
# HTTP client and read-ahead as ``hexz.py url=`` (hxz.sources.http.HttpSource), with no
# archive work (no index, CRC or decompression).  Its row tells the cost of the transport
# alone in this Python process, to set beside ``nbdkit curl`` (the same bytes in C) and
# ``hexz.py url=`` (the transport plus the archive work).
#
#   nbdkit python bench/http_only_plugin.py url=http://127.0.0.1:PORT/large.img

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nbdkit  # noqa: E402

from hxz.sources.http import HttpSource  # noqa: E402

API_VERSION = 2
url = None
source = None


def config(key, value):
    global url
    if key != "url":
        raise RuntimeError(f"unknown parameter {key!r}")
    url = value


def config_complete():
    if url is None:
        raise RuntimeError("url= is required")


def thread_model():
    # As hexz.py: requests serialized, read-ahead in the source's own threads.
    return nbdkit.THREAD_MODEL_SERIALIZE_ALL_REQUESTS


def after_fork():
    # Opened after nbdkit's fork: its connections and threads stay in the serving process.
    global source
    source = HttpSource([url])


def cleanup():
    if source is not None:
        source.close()


def open(readonly):
    return source


def get_size(h):
    return h.size


def can_multi_conn(h):
    return True


def pread(h, buf, offset, flags):
    h.readinto(buf, offset)
