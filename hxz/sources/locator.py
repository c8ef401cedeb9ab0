"""Finding the parents of a thin archive when the child, the parent or both are remote.

A ParentLocator gets the parent path recorded in the child's header and the child's
source, and returns the parent's source, or None to let the reader search local folders
(next to a local child, the current folder, parent-dir=).  Order:

1. ``parent-url=NAME=URL[,URL...]``: NAME is the recorded path or its base name.  This is
   how a local child finds a remote parent, and how a presigned child (whose siblings
   need signatures of their own) finds its parent.
2. A remote child: the recorded path resolved against each of the child's mirror URLs
   (a relative path as it is; any path by its base name, since hexz records the path the
   parent had when the child was packed), so siblings on the same server or in the same
   bucket folder work with no configuration.  The parent gets the child's mirrors, in
   the same order, and the same credentials.
3. Otherwise None: a local parent, found as for a local child.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from urllib.parse import quote, urljoin

from ..errors import FormatError
from .http import HttpSource, NotFound, stderr_log
from .remote import open_source
from .settings import RemoteSettings, safe_url

__all__ = ["RemoteLocator", "candidates"]


def _relatives(stored: str) -> list[str]:
    """Paths to try next to the child, best first."""
    out = []
    if stored and not stored.startswith("/") and "\\" not in stored:
        out.append(stored)
    base = posixpath.basename(stored.replace("\\", "/"))
    if base and base not in out:
        out.append(base)
    return out


def candidates(stored: str, child: object) -> list[list[str]]:
    """Mirror lists where a parent recorded as ``stored`` may sit, next to ``child``."""
    out: list[list[str]] = []
    if isinstance(child, HttpSource):
        for rel in _relatives(stored):
            # urljoin drops the child's query: a presigned signature is for one key only.
            out.append([urljoin(u, quote(rel)) for u in child.urls])
    elif getattr(child, "bucket", None) is not None and getattr(child, "key", None):
        folder = posixpath.dirname(child.key)
        for rel in _relatives(stored):
            key = posixpath.normpath(posixpath.join(folder, rel)).lstrip("/")
            if not key.startswith(".."):
                out.append([f"s3://{child.bucket}/{key}"])
    return out


class RemoteLocator:
    """A ParentLocator (callable) for the reader; opened parents are closed by it."""

    def __init__(self, settings: RemoteSettings | None = None,
                 log: Callable[[str], None] = stderr_log) -> None:
        self.settings = settings if settings is not None else RemoteSettings()
        self.log = log

    def __call__(self, stored: str, child: object):
        mapped = self._mapped(stored)
        if mapped is not None:
            # An explicit mapping must work: its failure is the answer.
            return open_source(mapped, self.settings, self.log)
        tried = []
        for urls in candidates(stored, child):
            try:
                src = open_source(urls, self.settings, self.log)
            except NotFound:
                tried.append(safe_url(urls[0]))
                continue
            except FormatError as e:
                # Forbidden or unreachable: say why, then let the local search run (its
                # "not found" names what was searched).
                self.log(f"parent {stored!r}: {e}")
                tried.append(safe_url(urls[0]))
                continue
            self.log(f"parent {stored!r} found at {src.name}")
            return src
        if tried:
            self.log(f"parent {stored!r}: not at {', '.join(tried)}; searching local "
                     "folders (or give parent-url=NAME=URL)")
        return None

    def _mapped(self, stored: str) -> list[str] | None:
        pu = self.settings.parent_urls
        for key in (stored, posixpath.basename(stored.replace("\\", "/"))):
            if key in pu:
                return pu[key]
        return None


