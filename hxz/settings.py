"""The hexz nbdkit plugin's parameters, parsed and checked outside nbdkit.

``plugins/hexz.py`` hands every ``key=value`` to :meth:`PluginSettings.set` and opens the
archive with :meth:`PluginSettings.open`; both raise ValueError or HxzError with one line,
which the plugin turns into a refusal to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbdsuite.sizes import parse_size

from .archive import VERIFY_MODES, Archive, open_archive
from .errors import FormatError
from .streamid import StreamId, stream_id

REPEATABLE = {"parent-dir"}
DEFAULT_READAHEAD = 8 << 20
# Readahead decoder threads.  One is the default because two measured no faster on the
# 2-core benchmark machine, where nbdcopy needs the other core (bench/RESULTS.md); with
# more cores a larger pool may pay.
MAX_DECODERS = 16


@dataclass
class PluginSettings:
    file: str | None = None
    stream: StreamId = StreamId.DISK
    stream_word: str = "disk"
    cache: int = 64 << 20
    parent_dirs: list[str] = field(default_factory=list)
    readahead: int = DEFAULT_READAHEAD
    threads: str = "serialize"
    decoders: int = 1
    verify: str = "crc"
    given: set[str] = field(default_factory=set)

    def set(self, key: str, value: str) -> None:
        """Take one plugin parameter (ValueError naming it when it is wrong)."""
        if key in self.given and key not in REPEATABLE:
            # Two values for one setting is a typo or a wrapper bug: no silent winner.
            raise ValueError(f"{key}= given twice (only parent-dir= may be repeated)")
        self.given.add(key)
        if key == "file":
            self.file = value
        elif key == "stream":
            try:
                self.stream = stream_id(value)
            except ValueError as e:
                raise ValueError(f"stream={value}: {str(e).split(': ', 1)[1]}") from None
            self.stream_word = value
        elif key == "cache":
            self.cache = parse_size(value, "cache")
        elif key == "parent-dir":
            self.parent_dirs.append(value)
        elif key == "readahead":
            self.readahead = _readahead(value)
        elif key == "threads":
            self.threads = _choice(key, value, ("serialize", "parallel"))
        elif key == "decoders":
            self.decoders = _count(key, value, 1, MAX_DECODERS)
        elif key == "verify":
            self.verify = _choice(key, value, VERIFY_MODES)
        else:
            raise ValueError(f"unknown parameter {key}= (see plugins/hexz.py)")

    def open(self) -> Archive:
        """Open the archive the parameters name (FormatError or ValueError, one line)."""
        if not self.file:
            raise ValueError("file=SNAPSHOT.hxz is required")
        archive = open_archive(self.file, parent_dirs=self.parent_dirs, cache_size=self.cache,
                               verify=self.verify)
        # An empty disk stream is a 0-byte export; a missing memory stream is a mistake.
        if self.stream is StreamId.MEMORY and not archive.has_stream(self.stream):
            archive.close()
            raise FormatError(f"{self.file}: stream={self.stream_word}: the archive has no "
                              f"{self.stream.label} stream")
        return archive

    @property
    def readahead_window(self) -> int:
        return min(self.readahead, self.cache // 4)


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{key}={value}: expected {' or '.join(allowed)}")
    return value


def _count(key: str, value: str, lo: int, hi: int) -> int:
    try:
        n = int(value, 10)
    except ValueError:
        n = None
    if n is None or not lo <= n <= hi:
        raise ValueError(f"{key}={value}: expected a whole number from {lo} to {hi}")
    return n


def _readahead(value: str) -> int:
    v = value.lower()
    if v in ("on", "yes", "true"):
        return DEFAULT_READAHEAD
    if v in ("off", "no", "false", "0"):
        return 0
    return parse_size(value, "readahead")
