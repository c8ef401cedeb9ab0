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


class RemoteConfig:
    def __init__(self, log: Callable[[str], None] = stderr_log) -> None:
        self.settings = RemoteSettings()
        self.log = log

    @staticmethod
    def accepts(key: str) -> bool:
        return key in REMOTE_KEYS

    def apply(self, key: str, value: str) -> None:
        """One parameter; raises ParamError (a ValueError) with a one-line message."""
        self.settings.apply(key, value)

    @property
    def urls(self) -> list[str]:
        return self.settings.urls

    def check(self, file: str | None) -> None:
        """Checks across parameters, for config_complete. Raises ParamError."""
        if file and self.urls:
            raise ParamError("file= and url= are exclusive: give one of them")
        if not file and not self.urls:
            raise ParamError("file=SNAPSHOT.hxz or url=URL[,URL...] is required")
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
