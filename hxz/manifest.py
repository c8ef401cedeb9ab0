"""Directory-archive manifest (docs/hxz-format.md §9): JSON in the metadata region."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import FormatError

# The manifest is read whole at open; refuse absurd sizes instead of allocating them.
MAX_MANIFEST = 256 << 20


@dataclass(frozen=True)
class Member:
    path: str
    stream: str       # "disk" | "memory"
    offset: int
    size: int
    mode: int
    mtime: int


def parse_manifest(raw: bytes, path: str, at: int, sizes: dict[str, int]) -> list[Member]:
    """Decode and validate the manifest; ``sizes`` maps "disk"/"memory" to stream sizes.

    The manifest has no checksum, so its layout is checked against what the format
    defines (docs/hxz-format.md §9): the primary stream is the other files back to back in manifest
    order, and a root-level ``memory`` file is the whole secondary stream.  A damaged
    offset is then refused instead of serving a member from the wrong bytes.
    """
    where = f"{path}: manifest at offset {at}"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{where}: not valid UTF-8 JSON ({e})") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise FormatError(f"{where}: no \"files\" list")
    out = []
    for i, f in enumerate(files):
        if not isinstance(f, dict):
            raise FormatError(f"{where}: entry {i} is not an object")
        name = f.get("path")
        nums = {k: f.get(k, 0) for k in ("offset", "size", "mode", "mtime")}
        if not isinstance(name, str) or not name:
            raise FormatError(f"{where}: entry {i} has no path")
        for k, v in nums.items():
            if not isinstance(v, int) or isinstance(v, bool) or (k != "mtime" and v < 0):
                raise FormatError(f"{where}: entry {i} ({name!r}) has a bad {k}: {v!r}")
        # Only a root-level file named exactly "memory" lives in the secondary stream.
        stream = "memory" if name == "memory" else "disk"
        if nums["offset"] + nums["size"] > sizes[stream]:
            raise FormatError(f"{where}: entry {i} ({name!r}) range [{nums['offset']}, "
                              f"{nums['offset'] + nums['size']}) exceeds the {stream} stream "
                              f"size {sizes[stream]}")
        out.append(Member(name, stream, nums["offset"], nums["size"], nums["mode"],
                          nums["mtime"]))
    _check_layout(out, where, sizes)
    return out


def _check_layout(members: list[Member], where: str, sizes: dict[str, int]) -> None:
    expected = {"disk": 0, "memory": 0}
    for i, m in enumerate(members):
        if m.offset != expected[m.stream]:
            raise FormatError(f"{where}: entry {i} ({m.path!r}) starts at {m.offset}, but the "
                              f"files before it end at {expected[m.stream]} of the {m.stream} "
                              "stream")
        expected[m.stream] += m.size
    for stream, end in expected.items():
        if end != sizes[stream]:
            raise FormatError(f"{where}: its files cover {end} bytes of the {stream} stream, "
                              f"which holds {sizes[stream]}")
