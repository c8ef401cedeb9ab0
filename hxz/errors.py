"""Exception hierarchy of the .hxz reader.

Every message is a single line that names the file and, where it helps, the offset.
"""


class HxzError(Exception):
    """Base class of every error raised by the reader."""


class FormatError(HxzError):
    """The archive (or one of its parents) cannot be opened or used."""


class UnsupportedError(FormatError):
    """A valid-looking archive uses a feature this reader refuses (encryption, old layouts...)."""


class BlockError(HxzError):
    """A block cannot be produced while serving (CRC mismatch, truncation, missing parent hash).

    Callers serving data map it to EIO; it never means "return zeros".
    """
