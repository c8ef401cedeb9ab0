"""Opening a remote archive: the right source for an http(s):// list or an s3:// URL."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .http import HttpSource, stderr_log
from .settings import RemoteSettings

__all__ = ["is_remote", "open_source"]


def is_remote(target: str) -> bool:
    return target.startswith(("http://", "https://", "s3://"))


def open_source(urls: str | Sequence[str], settings: RemoteSettings | None = None,
                log: Callable[[str], None] = stderr_log):
    """An HttpSource over the mirrors ``urls``, or an S3Source for one ``s3://`` URL.
    Raises hxz.FormatError (NotFound when no mirror has the object)."""
    if isinstance(urls, str):
        urls = [u.strip() for u in urls.split(",") if u.strip()]
    s = settings if settings is not None else RemoteSettings()
    if urls and urls[0].startswith("s3://"):
        from .s3 import S3Source  # botocore is imported only when S3 is used
        return S3Source(urls[0], s.http, endpoint_url=s.endpoint_url, region=s.region,
                        access_key=s.access_key, secret_key=s.secret_key,
                        session_token=s.session_token, log=log)
    return HttpSource(list(urls), s.http, log=log)
