"""What plugins/hexz.py needs to serve a remote archive, in one object.

The plugin hands every remote parameter (url=, the HTTP client's, the S3 ones,
parent-url=) to ``RemoteConfig.apply`` and opens the archive with ``RemoteConfig.open``,
which picks the source (a local path, HTTP(S) mirrors or S3) and the parent locator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .http import stderr_log
from .locator import RemoteLocator
from .remote import open_source
from .settings import REMOTE_KEYS, ParamError, RemoteSettings

__all__ = ["REMOTE_KEYS", "ParamError", "RemoteConfig"]


# Keys that may be given more than once: more mirrors, more parent mappings.
REPEATABLE = {"url", "parent-url"}


class RemoteConfig:
    def __init__(self, log: Callable[[str], None] = stderr_log) -> None:
        self.settings = RemoteSettings()
        self.log = log
        self._given: set[str] = set()

    @staticmethod
    def accepts(key: str) -> bool:
        return key in REMOTE_KEYS

    def apply(self, key: str, value: str) -> None:
        """One parameter; raises ParamError (a ValueError) with a one-line message."""
        if key in self._given and key not in REPEATABLE:
            raise ParamError(f"{key}= given twice (url= and parent-url= may be repeated)")
        self._given.add(key)
        self.settings.apply(key, value)

    @property
    def urls(self) -> list[str]:
        return self.settings.urls

    @property
    def needed(self) -> bool:
        """Whether the archive or a parent is remote (else the local path is unchanged)."""
        return bool(self.settings.urls or self.settings.parent_urls)

    def check(self, file: str | None) -> None:
        """Checks across parameters, for config_complete. Raises ParamError."""
        if file and self.urls:
            raise ParamError("file= and url= are exclusive: give one of them")
        if not file and not self.urls:
            raise ParamError("file=SNAPSHOT.hxz or url=URL[,URL...] is required")
        if self._given - {"url", "parent-url"} and not self.urls and \
                not self.settings.parent_urls:
            raise ParamError(f"{sorted(self._given)[0]}= applies to url= or parent-url= only")
        self.settings.finish()

    def open(self, file: str | None, parent_dirs: Sequence[str] = (),
             cache_size: int = 64 << 20, **kw: Any):
        """Open the archive at ``file`` or at the configured URLs, parents included.
        Raises hxz.HxzError (FormatError with one line naming the file or URL)."""
        import hxz

        target: Any = file
        if self.urls:
            target = open_source(self.urls, self.settings, self.log)
        try:
            return hxz.open_archive(target, parent_dirs, cache_size,
                                    locator=RemoteLocator(self.settings, self.log), **kw)
        except BaseException:
            if target is not file:
                target.close()
            raise

    def open_for(self, plugin_settings):
        """Open what the hexz plugin's settings (hxz.settings.PluginSettings) and these
        remote parameters name, with the same checks as the local path."""
        from hxz.errors import FormatError
        from hxz.streamid import StreamId

        s = plugin_settings
        self.check(s.file)
        if not self.needed:
            return s.open()
        archive = self.open(s.file, s.parent_dirs, s.cache, verify=s.verify)
        if s.stream is StreamId.MEMORY and not archive.has_stream(s.stream):
            archive.close()
            raise FormatError(f"{archive.path}: stream={s.stream_word}: the archive has no "
                              f"{s.stream.label} stream")
        return archive
