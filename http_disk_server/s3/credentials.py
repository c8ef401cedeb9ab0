"""Access keys of the S3 face, read from a file (never from argv or the environment).

The file is the AWS shared-credentials format, so an existing ``~/.aws/credentials``
works as is: sections holding ``aws_access_key_id`` and ``aws_secret_access_key``. Each
section adds one key pair.
"""

from __future__ import annotations

import configparser
import logging
import os
import stat

log = logging.getLogger("http_disk_server")

_ID = "aws_access_key_id"
_SECRET = "aws_secret_access_key"


class Credentials:
    """Access key id -> secret key. The secrets never appear in repr() or messages."""

    def __init__(self, keys: dict[str, str]) -> None:
        self._keys = dict(keys)

    def secret(self, access_key: str) -> str | None:
        return self._keys.get(access_key)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Credentials({len(self._keys)} keys)"

    @classmethod
    def from_file(cls, path: str) -> Credentials:
        """Raises ValueError (one line naming the file and the problem)."""
        try:
            with open(path, encoding="utf-8") as f:
                mode = os.fstat(f.fileno()).st_mode
                text = f.read(1 << 20)
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ValueError(f"cannot read --credentials {path}: {reason}") from e
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("--credentials %s is readable by other users (chmod 600 it)", path)
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=path)
        except configparser.Error as e:
            # configparser's messages quote lines, which may hold a secret: say where only.
            line = getattr(e, "lineno", None)
            where = f" at line {line}" if line else ""
            raise ValueError(f"--credentials {path}: not an AWS credentials file{where} "
                             "([section] then aws_access_key_id = ... and "
                             "aws_secret_access_key = ...)") from None
        keys: dict[str, str] = {}
        for name in parser.sections():
            section = parser[name]
            key_id, secret = section.get(_ID, "").strip(), section.get(_SECRET, "").strip()
            if not key_id or not secret:
                raise ValueError(f"--credentials {path}: section [{name}] needs both {_ID} "
                                 f"and {_SECRET}")
            keys[key_id] = secret
        if not keys:
            raise ValueError(f"--credentials {path}: no [section] with {_ID} and {_SECRET}")
        return cls(keys)
