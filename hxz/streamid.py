"""Stream identity (docs/hxz-format.md §8): one enum, one alias table.

An archive holds up to two logical streams.  hexz has called them disk/memory,
primary/secondary and main/auxiliary over time; this reader names them ``StreamId.DISK`` and
``StreamId.MEMORY`` and accepts the words below wherever a stream is chosen by name.
"""

from __future__ import annotations

import enum


class StreamId(enum.IntEnum):
    """The value is the stream's position in the master index (0 = first page list)."""

    DISK = 0
    MEMORY = 1

    @property
    def label(self) -> str:
        return self.name.lower()


ALIASES: dict[str, StreamId] = {"disk": StreamId.DISK, "primary": StreamId.DISK,
                                "memory": StreamId.MEMORY, "secondary": StreamId.MEMORY}
ACCEPTED = "disk or memory (aliases primary, secondary)"


def stream_id(name: str | StreamId) -> StreamId:
    """The StreamId for a name or alias (ValueError listing what is accepted)."""
    if isinstance(name, StreamId):
        return name
    try:
        return ALIASES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown stream {name!r}: expected {ACCEPTED}") from None
