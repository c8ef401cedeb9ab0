"""nbdkit plugin serving a Hexz .hxz archive read-only.

  nbdkit python plugins/hexz.py file=SNAPSHOT.hxz [stream=disk|memory] [cache=SIZE]
         [parent-dir=DIR]... [readahead=on|off|SIZE] [threads=serialize|parallel]
         [verify=crc|hash]

The default export is the chosen stream; each member of a directory archive is also an
export named by its manifest path.  All format work lives in the ``hxz`` package.
"""

import errno
import importlib.util
import os
import site
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)
if importlib.util.find_spec("blake3") is None:
    # blake3 (zero records, verify=hash) has no Debian package: `make venv` installs it in
    # the repository's .venv, built from the /usr/bin/python3 that nbdkit embeds.  Appended,
    # so the system's own packages still come first.
    site.addsitedir(os.path.join(_REPO, ".venv", "lib", f"python{sys.version_info[0]}."
                                 f"{sys.version_info[1]}", "site-packages"))

import nbdkit  # noqa: E402

import hxz  # noqa: E402
from nbdsuite.nbdkit_glue import refuse_start  # noqa: E402
from nbdsuite.sizes import parse_size  # noqa: E402

API_VERSION = 2

_cfg = {"file": None, "stream": "disk", "cache": 64 << 20, "parent-dir": [],
        "readahead": 8 << 20, "threads": "serialize", "verify": "crc"}
_archive = None


def _fatal(msg):
    refuse_start("hexz", msg)


_given = set()


def config(key, value):
    try:
        if key in _given and key != "parent-dir":
            # Two values for one setting is a typo or a wrapper bug: no silent winner.
            raise ValueError(f"{key}= given twice (only parent-dir= may be repeated)")
        _given.add(key)
        if key == "file":
            _cfg["file"] = value
        elif key == "stream":
            if value not in ("disk", "memory", "primary", "secondary"):
                raise ValueError(f"stream={value}: expected disk or memory")
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
        elif key == "verify":
            if value not in ("crc", "hash"):
                raise ValueError(f"verify={value}: expected crc or hash")
            _cfg["verify"] = value
        elif key == "threads":
            if value not in ("serialize", "parallel"):
                raise ValueError(f"threads={value}: expected serialize or parallel")
            _cfg["threads"] = value
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
    except hxz.HxzError as e:
        _fatal(str(e))
    if _cfg["stream"] in ("memory", "secondary") and not _archive.has_stream("memory"):
        _fatal(f"{_cfg['file']}: stream={_cfg['stream']}: the archive has no memory stream")


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
    return nbdkit.CACHE_NONE


def block_size(h):
    return (1, 4096, 32 << 20)


def pread(h, buf, offset, flags):
    try:
        h.readinto(buf, offset)
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
