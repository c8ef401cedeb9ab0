#!/usr/bin/nbdkit python
# -*- python -*-
"""nbdkit plugin serving a Hexz .hxz archive read-only.

  nbdkit hexz file=SNAPSHOT.hxz ...                  (installed: make install)
  nbdkit python plugins/hexz.py file=SNAPSHOT.hxz [stream=disk|memory] [cache=SIZE]
         [parent-dir=DIR]... [readahead=on|off|SIZE] [threads=serialize|parallel]
         [verify=crc|hash]

The default export is the chosen stream; each member of a directory archive is also an
export named by its manifest path.  All format work lives in the ``hxz`` package.
"""

import errno
import os
import sys

# nbdkit 1.32 does not put the script's folder on sys.path. Run from a checkout
# (plugins/ beside the packages), use the checkout's packages; installed into nbdkit's
# plugin directory (make install), import the installed ones.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_checkout, "hxz", "__init__.py")):
    sys.path.insert(0, _checkout)

import nbdkit  # noqa: E402

import hxz  # noqa: E402
from nbdsuite.nbdkit_glue import refuse_start  # noqa: E402
from nbdsuite.sizes import parse_size  # noqa: E402
from nbdsuite.version import VERSION  # noqa: E402

API_VERSION = 2

_cfg = {"file": None, "stream": "disk", "cache": 64 << 20, "parent-dir": [],
        "readahead": 8 << 20, "threads": "serialize", "verify": "crc"}
# Keys that may be given more than once; any other key given twice is refused, since
# silently keeping one of two different files or streams serves the wrong disk.
_REPEATABLE = {"parent-dir"}
_given = set()
_archive = None


def _fatal(msg):
    refuse_start("hexz", msg)


def dump_plugin():
    # `nbdkit hexz --dump-plugin`: what this installation can do.
    from hxz import native
    print(f"hexz_version={VERSION}")
    print("hexz_parameters=file,stream,cache,parent-dir,readahead,threads,verify")
    print(f"hexz_package={os.path.dirname(hxz.__file__)}")
    print("hexz_codecs=lz4,zstd")
    print(f"hexz_native={'liblz4,libdeflate' if native.AVAILABLE else 'none'}")
    try:
        hxz.check_verify_mode("hash")
        print("hexz_verify=crc,hash")
    except ValueError:
        print("hexz_verify=crc")


def config(key, value):
    try:
        if key in _given and key not in _REPEATABLE:
            raise ValueError(f"{key}= given twice ({key}={value} is the second)")
        _given.add(key)
        if key == "file":
            _cfg["file"] = value
        elif key == "stream":
            hxz.stream_id(value)   # raises naming the accepted names
            _cfg["stream"] = value
        elif key == "cache":
            _cfg["cache"] = parse_size(value, "cache")
        elif key == "parent-dir":
            _cfg["parent-dir"].append(value)
        elif key == "readahead":
            v = value.lower()
            if v in ("on", "yes", "true"):
                _cfg["readahead"] = 8 << 20
            elif v in ("off", "no", "false", "0"):
                _cfg["readahead"] = 0
            else:
                _cfg["readahead"] = parse_size(value, "readahead")
        elif key == "threads":
            if value not in ("serialize", "parallel"):
                raise ValueError(f"threads={value}: expected serialize or parallel")
            _cfg["threads"] = value
        elif key == "verify":
            _cfg["verify"] = hxz.check_verify_mode(value)
        else:
            raise ValueError(f"unknown parameter {key}= (see plugins/hexz.py)")
    except ValueError as e:
        _fatal(str(e))


def config_complete():
    global _archive
    if not _cfg["file"]:
        _fatal("file=SNAPSHOT.hxz is required")
    try:
        _archive = hxz.open_archive(_cfg["file"], parent_dirs=_cfg["parent-dir"],
                                    cache_size=_cfg["cache"], verify=_cfg["verify"])
        if _archive.stream(_cfg["stream"]).size == 0 and hxz.stream_id(_cfg["stream"]):
            _fatal(f"{_cfg['file']}: stream={_cfg['stream']}: the archive has no memory "
                   f"stream")
    except (hxz.HxzError, RuntimeError) as e:
        _fatal(str(e))


def thread_model():
    # Measured (bench/RESULTS.md): serialized requests plus the reader's readahead worker
    # beat PARALLEL; the GIL makes parallel request threads contend.
    if _cfg["threads"] == "parallel":
        return nbdkit.THREAD_MODEL_PARALLEL
    return nbdkit.THREAD_MODEL_SERIALIZE_ALL_REQUESTS


def after_fork():
    # Threads must not cross nbdkit's daemonising fork, so readahead starts here.
    window = min(_cfg["readahead"], _cfg["cache"] // 4)
    # Jobs of window/4 (2 MiB by default): measured faster than 256-512 KiB jobs, which
    # cost more batches and GIL hand-offs per GiB (bench/RESULTS.md).
    if window > 0:
        _archive.stream(_cfg["stream"]).enable_readahead(window, max(window // 4, 64 << 10))


def cleanup():
    if _archive is not None:
        _archive.close()


# nbdkit 1.32 refuses to send a list of more than 10000 exports; longer lists are cut
# (every member stays reachable by name).
MAX_LISTED = 9999


def list_exports(readonly, is_tls):
    names = list(dict.fromkeys(m.path for m in _archive.members()))  # each name once
    return [("", f"{_cfg['stream']} stream")] + names[:MAX_LISTED - 1]


def default_export(readonly, is_tls):
    return ""


def open(readonly):
    name = nbdkit.export_name()
    if name == "":
        return _archive.stream(_cfg["stream"])
    try:
        return _archive.member(name)
    except KeyError:
        nbdkit.set_error(errno.ENOENT)
        raise RuntimeError(f"{_archive.path}: no member named {name!r}") from None


def get_size(h):
    return h.size


def can_write(h):
    return False


def can_multi_conn(h):
    return True


def can_extents(h):
    return True


def can_cache(h):
    # NBD_CMD_CACHE warms the block cache (readahead filter, qemu prefetch, h.cache()).
    return nbdkit.CACHE_NATIVE


def block_size(h):
    return (1, 4096, 32 << 20)


def pread(h, buf, offset, flags):
    try:
        h.readinto(buf, offset)
    except hxz.HxzError as e:
        nbdkit.set_error(errno.EIO)
        raise RuntimeError(str(e)) from None


def cache(h, count, offset, flags):
    try:
        h.prefetch(offset, count)
    except hxz.HxzError as e:
        nbdkit.set_error(errno.EIO)
        raise RuntimeError(str(e)) from None


def extents(h, count, offset, flags):
    try:
        runs = h.extents(offset, count)
    except hxz.HxzError as e:
        nbdkit.set_error(errno.EIO)
        raise RuntimeError(str(e)) from None
    zero = nbdkit.EXTENT_HOLE | nbdkit.EXTENT_ZERO
    if flags & nbdkit.FLAG_REQ_ONE:
        runs = runs[:1]
    return [(a, n, zero if z else 0) for a, n, z in runs]
