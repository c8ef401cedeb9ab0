#!/usr/bin/nbdkit python
# -*- python -*-
"""nbdkit plugin serving a Hexz .hxz archive read-only.

  nbdkit hexz file=SNAPSHOT.hxz ...                  (installed: make install)
  nbdkit python plugins/hexz.py file=SNAPSHOT.hxz [stream=disk|memory] [cache=SIZE]
         [parent-dir=DIR]... [readahead=on|off|SIZE] [threads=serialize|parallel]
         [verify=crc|hash]
  nbdkit python plugins/hexz.py url=URL[,URL...] [same parameters] [user=U]
         [password=P|-|+FILE|-FD] [cafile=F] [insecure=true] [timeout=S]
         [connect-timeout=S] [retries=N] [retry-delay=S] [connections=N]
         [endpoint-url=URL] [region=R] [access-key=K] [secret-key=S|+FILE]
         [parent-url=NAME=URL]...

url= takes http(s):// mirrors of one archive or one s3://BUCKET/KEY (hxz/sources/).

The default export is the chosen stream; each member of a directory archive is also an
export named by its manifest path.  Every callback delegates to the ``hxz`` package: the
parameters to hxz.settings, reads and block status to the archive's streams.
"""

import contextlib
import errno
import importlib.util
import os
import site
import sys

# nbdkit 1.32 does not put the script's folder on sys.path. Run from a checkout
# (plugins/ beside the packages), use the checkout's packages; installed into nbdkit's
# plugin directory (make install), import the installed ones.
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_REPO, "hxz", "__init__.py")):
    sys.path.insert(0, _REPO)
    if importlib.util.find_spec("blake3") is None:
        # blake3 (zero records, verify=hash) has no Debian package: `make venv` installs
        # it in the checkout's .venv, built from the /usr/bin/python3 nbdkit embeds.
        # Appended, so the system's own packages still come first.
        site.addsitedir(os.path.join(_REPO, ".venv", "lib", f"python{sys.version_info[0]}."
                                     f"{sys.version_info[1]}", "site-packages"))

import nbdkit  # noqa: E402

import hxz  # noqa: E402
from hxz.settings import PluginSettings  # noqa: E402
from hxz.sources.glue import REMOTE_KEYS, RemoteConfig  # noqa: E402
from nbdsuite.nbdkit_glue import refuse_start  # noqa: E402
from nbdsuite.version import VERSION  # noqa: E402

API_VERSION = 2
# nbdkit 1.32 refuses to send a list of more than 10000 exports; longer lists are cut
# (every member stays reachable by name).
MAX_LISTED = 9999
ZERO = nbdkit.EXTENT_HOLE | nbdkit.EXTENT_ZERO

settings = PluginSettings()
remote = RemoteConfig()      # url=, the HTTP client's and S3's parameters, parent-url=
archive = None


@contextlib.contextmanager
def _refuse_on_error():
    """At configuration time a bad parameter or archive stops nbdkit with one line."""
    try:
        yield
    except (ValueError, hxz.HxzError) as e:
        refuse_start("hexz", str(e))


@contextlib.contextmanager
def _eio():
    """While serving, a block that cannot be produced fails the request with EIO."""
    try:
        yield
    except hxz.HxzError as e:
        nbdkit.set_error(errno.EIO)
        raise RuntimeError(str(e)) from None


def dump_plugin():
    # `nbdkit hexz --dump-plugin`: what this installation can do.
    from hxz import digest, native
    print(f"hexz_version={VERSION}")
    print(f"hexz_package={os.path.dirname(hxz.__file__)}")
    local = ("file", "stream", "cache", "parent-dir", "readahead", "threads", "verify")
    print(f"hexz_parameters={','.join(local + REMOTE_KEYS)}")
    print("hexz_codecs=lz4,zstd")
    libs = (["liblz4", "libdeflate"] if native.AVAILABLE else []) + \
        (["libzstd"] if native.ZSTD_AVAILABLE else [])
    print(f"hexz_native={','.join(libs) or 'none'}")
    try:
        digest.require()
        print("hexz_verify=crc,hash")
    except digest.MissingBlake3:
        print("hexz_verify=crc")


def config(key, value):
    with _refuse_on_error():
        if remote.accepts(key):
            remote.apply(key, value)
        else:
            settings.set(key, value)


def config_complete():
    global archive
    with _refuse_on_error():
        archive = remote.open_for(settings)


def thread_model():
    # Measured (bench/RESULTS.md): serialized requests plus the reader's readahead worker
    # beat PARALLEL; the GIL makes parallel request threads contend.
    if settings.threads == "parallel":
        return nbdkit.THREAD_MODEL_PARALLEL
    return nbdkit.THREAD_MODEL_SERIALIZE_ALL_REQUESTS


def after_fork():
    # Threads must not cross nbdkit's daemonising fork, so readahead starts here.  Jobs of
    # window/4 (2 MiB by default): measured faster than 256-512 KiB jobs (bench/RESULTS.md).
    window = settings.readahead_window
    if window > 0:
        archive.stream(settings.stream).enable_readahead(window, max(window // 4, 64 << 10))


def cleanup():
    if archive is not None:
        archive.close()


def list_exports(readonly, is_tls):
    names = list(dict.fromkeys(m.path for m in archive.members()))  # each name once
    return [("", f"{settings.stream_word} stream")] + names[:MAX_LISTED - 1]


def default_export(readonly, is_tls):
    return ""


def open(readonly):
    name = nbdkit.export_name()
    if name == "":
        return archive.stream(settings.stream)
    try:
        return archive.member(name)
    except KeyError:
        nbdkit.set_error(errno.ENOENT)
        raise RuntimeError(f"{archive.path}: no member named {name!r}") from None


def get_size(h):
    return h.size


def can_write(h):
    return False


def can_multi_conn(h):
    return True


def can_extents(h):
    return True


def can_cache(h):
    # NBD_CMD_CACHE decodes into the block cache (readahead filter, qemu, h.cache()).
    return nbdkit.CACHE_NATIVE


def block_size(h):
    return (1, 4096, 32 << 20)


def pread(h, buf, offset, flags):
    with _eio():
        h.readinto(buf, offset)


def cache(h, count, offset, flags):
    with _eio():
        h.prefetch(offset, count)


def extents(h, count, offset, flags):
    with _eio():
        runs = h.extents(offset, count)
    return [(a, n, ZERO if z else 0) for a, n, z in runs[:1 if flags & nbdkit.FLAG_REQ_ONE
                                                              else None]]
