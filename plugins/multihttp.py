#!/usr/bin/nbdkit python
# -*- python -*-
"""nbdkit Python plugin: one NBD disk over several HTTP servers, with failover.

nbdkit multihttp urls=URL[,URL...] ...                (installed: make install)
nbdkit python plugins/multihttp.py urls=URL[,URL...] [user=U] [password=P|-|+FILE|-FD]
    [device-size=SIZE] [timeout=SECS] [connect-timeout=SECS] [retries=N]
    [retry-delay=SECS] [cafile=F] [insecure=true] [connections=N] [clock-skew=SECS]

The logic lives in the multihttp package; this file only adapts it to nbdkit.
"""

import errno
import functools
import os
import sys

# nbdkit 1.32 does not put the script's folder on sys.path. Run from a checkout
# (plugins/ beside the packages), use the checkout's packages; installed into nbdkit's
# plugin directory (make install), import the installed ones.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_checkout, "multihttp", "__init__.py")):
    sys.path.insert(0, _checkout)

import nbdkit  # noqa: E402

from multihttp import errors, params, request  # noqa: E402
from multihttp.failover import Client  # noqa: E402
from multihttp.probe import ProbeError  # noqa: E402
from nbdsuite.nbdkit_glue import refuse_start  # noqa: E402
from nbdsuite.version import VERSION  # noqa: E402

API_VERSION = 2

_params = params.Params()
_client: Client | None = None


def _fail(e: BaseException):
    """Set the errno for ``e`` and re-raise it as a one-line error for nbdkit's log."""
    # Only our own failures carry a chosen errno; anything else (a bug, an
    # unexpected library error) is an I/O error, never a stray errno.
    nbdkit.set_error(e.errno if isinstance(e, errors.HttpError) else errno.EIO)
    raise RuntimeError(str(e) or type(e).__name__) from None


def _nbd_errors(callback):
    """Every data callback's failure reaches the client with its errno, as one line."""
    @functools.wraps(callback)
    def wrapper(*args):
        try:
            return callback(*args)
        except Exception as e:
            _fail(e)
    return wrapper


def _bad_parameter(e: params.ParamError):
    refuse_start("multihttp", str(e))


def dump_plugin():
    # `nbdkit multihttp --dump-plugin`: version and parameters.
    print(f"multihttp_version={VERSION}")
    print(f"multihttp_parameters={','.join(params.KNOWN_KEYS)}")


def config(key, value):
    try:
        params.apply(_params, key, value)
    except params.ParamError as e:
        _bad_parameter(e)


def config_complete():
    try:
        params.finish(_params)
    except params.ParamError as e:
        _bad_parameter(e)


def thread_model():
    return nbdkit.THREAD_MODEL_PARALLEL


def after_fork():
    # Pools (and the threads that will share them) are made after nbdkit
    # daemonizes, so no socket is inherited across fork.
    global _client
    _client = Client(_params)
    _client.start()


def cleanup():
    if _client is not None:
        _client.close()


def open(readonly):
    try:
        _client.ensure_probed()
    except ProbeError as e:
        for line in e.lines:
            nbdkit.debug(line)
        raise RuntimeError("no usable server: " + "; ".join(e.lines)) from None
    except Exception as e:
        _fail(e)
    return {"readonly": readonly}


def get_size(h):
    return _client.size


def can_write(h):
    # A server that allows no PUT makes a read-only export; nbdkit -r needs no check.
    return request.READ_ONLY not in _client.features


def can_multi_conn(h):
    # Safe: no client-side cache; every write is either durable when
    # acknowledged, or tracked in one process-wide dirty set that any
    # connection's flush drains; reads on any connection see completed writes.
    return True


def can_flush(h):
    # With servers that have no flush, every PUT is durable before its reply,
    # so flush is a correct no-op; with flush support it PATCHes.
    return True


def can_fua(h):
    # FUA is ?flush=y, or implicit with durable PUTs.
    return nbdkit.FUA_NATIVE


def can_zero(h):
    return "zero" in _client.features


def can_trim(h):
    return "zero" in _client.features


def can_fast_zero(h):
    return False


@_nbd_errors
def pread(h, buf, offset, flags):
    _client.pread(buf, offset)


@_nbd_errors
def pwrite(h, buf, offset, flags):
    _client.pwrite(buf, offset, bool(flags & nbdkit.FLAG_FUA))


@_nbd_errors
def flush(h, flags):
    _client.flush()


@_nbd_errors
def zero(h, count, offset, flags):
    _client.zero(count, offset, bool(flags & nbdkit.FLAG_FUA))


@_nbd_errors
def trim(h, count, offset, flags):
    _client.zero(count, offset, bool(flags & nbdkit.FLAG_FUA), trim=True)
