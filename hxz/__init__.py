"""Pure-Python reader for Hexz ``.hxz`` archives (format: /work/shared/hxz-format.md).

Public API (stable contract, see notes/api_hxz.md)::

    archive = hxz.open_archive(path, parent_dirs=(), cache_size=64 << 20)
    stream = archive.stream("disk")          # or "memory"
    stream.readinto(buf, offset); stream.read(offset, n); stream.extents(offset, n)
"""

from .archive import Archive, MemberView, Stream, open_archive
from .errors import BlockError, FormatError, HxzError, UnsupportedError
from .manifest import Member

__all__ = ["Archive", "BlockError", "FormatError", "HxzError", "Member", "MemberView",
           "Stream", "UnsupportedError", "open_archive"]
