"""HTTP Basic authentication against one user and a password read from a file.

The password lives only in this object: it is never logged, never put in an
error message, and compared in constant time so timing does not leak it.
"""

from __future__ import annotations

import base64
import binascii
import hmac


class BasicAuth:
    realm = "http-disk-server"

    def __init__(self, user: str, password: str) -> None:
        self._user = user.encode()
        self._password = password.encode()

    @classmethod
    def from_file(cls, user: str, password_file: str) -> BasicAuth:
        """Read the password: the file's first line, without its line ending.
        Raises ValueError with a one-line reason naming the file."""
        try:
            with open(password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as e:
            raise ValueError(f"cannot read password file {password_file}: "
                             f"{e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ValueError(f"password file {password_file} is not UTF-8 text "
                             f"(byte {e.start})") from e
        if not password:
            raise ValueError(f"password file {password_file} is empty")
        return cls(user, password)

    def check(self, header: str | None) -> bool:
        """True when an ``Authorization`` header carries the right user and password."""
        if not header:
            return False
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        # Evaluate both comparisons so a wrong user costs the same time as a wrong password.
        ok_user = hmac.compare_digest(user, self._user)
        ok_password = hmac.compare_digest(password, self._password)
        return ok_user and ok_password

    def challenge(self) -> str:
        return f'Basic realm="{self.realm}", charset="UTF-8"'

    def __repr__(self) -> str:  # never show the password, even in a debugger dump
        return f"BasicAuth(user={self._user.decode(errors='replace')!r})"
