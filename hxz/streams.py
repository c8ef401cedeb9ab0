"""The two streams of an archive, by one name each.

The format calls them primary and secondary; hexz's tools call them disk and memory.
The reader names them disk and memory everywhere (messages included) and accepts the
format's names as aliases.
"""

from __future__ import annotations

import enum


class StreamId(enum.IntEnum):
    DISK = 0        # the format's "primary" stream
    MEMORY = 1      # the format's "secondary" stream

    @property
    def label(self) -> str:
        return self.name.lower()


_ALIASES = {"disk": StreamId.DISK, "primary": StreamId.DISK,
            "memory": StreamId.MEMORY, "secondary": StreamId.MEMORY}


def stream_id(name: str | StreamId) -> StreamId:
    """The stream a name denotes; ValueError naming what is accepted otherwise."""
    if isinstance(name, StreamId):
        return name
    try:
        return _ALIASES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown stream {name!r} (expected disk or memory; aliases "
                         f"primary, secondary)") from None
