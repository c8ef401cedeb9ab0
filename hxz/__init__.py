"""Pure-Python reader for Hexz ``.hxz`` archives (format: docs/hxz-format.md).

Public API::

    archive = hxz.open_archive(path, parent_dirs=(), cache_size=64 << 20, verify="crc")
    stream = archive.stream("disk")          # or "memory" (aliases primary, secondary)
    stream.readinto(buf, offset); stream.read(offset, n); stream.extents(offset, n)
    stream.prefetch(offset, n)               # warm the block cache (NBD_CMD_CACHE)
"""

from .archive import Archive, MemberView, Stream, open_archive
from .digest import VERIFY_MODES, check_verify_mode
from .errors import BlockError, FormatError, HxzError, UnsupportedError
from .manifest import Member
from .streams import StreamId, stream_id

__all__ = ["VERIFY_MODES", "Archive", "BlockError", "FormatError", "HxzError", "Member",
           "MemberView", "Stream", "StreamId", "UnsupportedError", "check_verify_mode",
           "open_archive", "stream_id"]
