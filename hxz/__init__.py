"""Pure-Python reader for Hexz ``.hxz`` archives (format: docs/hxz-format.md).

Public API::

    archive = hxz.open_archive(path_or_source, parent_dirs=(), cache_size=64 << 20,
                               locator=None, verify="crc")
    stream = archive.stream("disk")          # or "memory", or hxz.StreamId.MEMORY
    stream.readinto(buf, offset); stream.read(offset, n); stream.extents(offset, n)

A PayloadSource (hxz.source) supplies the archive's bytes: FileSource for a local file,
or any object with the same four members.
"""

from .archive import VERIFY_MODES, Archive, ParentLocator, open_archive
from .errors import BlockError, FormatError, HxzError, UnsupportedError
from .manifest import Member
from .source import FileSource, PayloadSource
from .stream import MemberView, Stream
from .streamid import StreamId

__all__ = ["VERIFY_MODES", "Archive", "BlockError", "FileSource", "FormatError", "HxzError",
           "Member", "MemberView", "ParentLocator", "PayloadSource", "Stream", "StreamId",
           "UnsupportedError", "open_archive"]
