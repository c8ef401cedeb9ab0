"""Which objects the bucket holds: one scan of DIR, and the backends behind each key.

Layout (README, "S3 gateway"): a raw file ``a/b.img`` is the object ``a/b.img`` as it is;
an archive ``vm.hxz`` gives ``vm.hxz/disk``, ``vm.hxz/memory`` (when it has that stream),
``vm.hxz/info.json`` and, for a directory archive, ``vm.hxz/files/<member path>``.

Keys are only ever looked up in the scan's table, never turned into a file name, so no
key can reach outside DIR; the scan itself skips symbolic links and dot files. A source
file's identity (device, inode, size, mtime, and those of an archive's parents) is its
version: the ETag derives from it, and a lookup that finds it changed rescans, so an
ETag never names bytes other than those served with it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import mimetypes
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import fileio
from ..backend import Backend, BackendError

log = logging.getLogger("http_disk_server")

ARCHIVE_SUFFIX = ".hxz"
OCTET_STREAM = "application/octet-stream"
#: How long a scan answers lookups before the next lookup rescans (listings always do).
SCAN_TTL = 1.0

Version = tuple[int, ...]


def file_version(st: os.stat_result) -> Version:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class BytesBackend(Backend):
    """A small object held in memory (an archive's info.json)."""

    kind = "generated"

    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        self.name = name
        self.size = len(data)

    def readinto(self, buf: memoryview, offset: int) -> None:
        if offset + len(buf) > self.size:
            raise BackendError(errno.EIO, f"{self.name}: read past the end at offset {offset}")
        buf[:] = self._data[offset:offset + len(buf)]


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str               # quoted, as in the ETag header
    mtime: float            # of the source file: Last-Modified
    content_type: str
    source: Source
    backend: Callable[[], Backend]


class Source:
    """One file of DIR and the objects it gives."""

    def __init__(self, root: str, rel: str, version: Version, mtime: float) -> None:
        self.root = root
        self.rel = rel
        self.path = os.path.join(root, rel)
        self.version = version
        self.mtime = mtime
        self._lock = threading.Lock()
        self._raw: Backend | None = None
        self._archive = None
        self.objects: list[S3Object] = []

    def etag(self, key: str) -> str:
        digest = hashlib.md5(f"{key}\0{self.version}".encode(), usedforsecurity=False)
        return f'"{digest.hexdigest()}"'

    def current_version(self) -> Version | None:
        """The version on disk now (None: gone or no longer a plain file)."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return file_version(st) + self._parent_versions()

    def _parent_versions(self) -> Version:
        return ()

    def close(self) -> None:
        with self._lock:
            backend, self._raw = self._raw, None
        if backend is not None:
            backend.close()


class RawSource(Source):
    def load(self, size: int) -> None:
        self.objects = [S3Object(self.rel, size, self.etag(self.rel), self.mtime,
                                 _content_type(self.rel), self, self._backend)]

    def _backend(self) -> Backend:
        with self._lock:
            if self._raw is None:
                self._raw = fileio.open(self.path, read_only=True)
            return self._raw


class ArchiveSource(Source):
    def __init__(self, root: str, rel: str, version: Version, mtime: float,
                 verify: str) -> None:
        super().__init__(root, rel, version, mtime)
        self._verify = verify
        self._parents: list[str] = []

    def load(self) -> None:
        """Open the archive (hxz raises FormatError and OSError naming the file)."""
        import hxz  # only the S3 face and --snapshot need the reader

        from ..snapshot import SnapshotBackend

        kw = {"verify": self._verify} if self._verify != "crc" else {}
        archive = hxz.open_archive(self.path, **kw)
        try:
            info = archive.info()
            self._parents = list(info.get("parent_chain") or [])
            self.version = self.version + self._parent_versions()
            objects = []

            def add(key: str, size: int, ctype: str, backend: Backend) -> None:
                objects.append(S3Object(key, size, self.etag(key), self.mtime, ctype, self,
                                        lambda: backend))

            disk = archive.stream("disk")
            add(f"{self.rel}/disk", disk.size, OCTET_STREAM,
                SnapshotBackend(disk, f"{self.rel}:disk"))
            memory = archive.stream("memory")
            if memory.size > 0:
                add(f"{self.rel}/memory", memory.size, OCTET_STREAM,
                    SnapshotBackend(memory, f"{self.rel}:memory"))
            for m in archive.members():
                view = archive.member(m.path)
                add(f"{self.rel}/files/{m.path}", m.size, _content_type(m.path),
                    SnapshotBackend(view, f"{self.rel}:{m.path}"))
            doc = _public_info(info, self.rel, archive)
            body = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
            add(f"{self.rel}/info.json", len(body), "application/json",
                BytesBackend(body, f"{self.rel}/info.json"))
        except BaseException:
            archive.close()
            raise
        self._archive = archive
        self.objects = objects

    def _parent_versions(self) -> Version:
        out: list[int] = []
        for p in self._parents:
            try:
                out += file_version(os.stat(p))
            except OSError:
                out += (-1,)
        return tuple(out)

    def close(self) -> None:
        archive, self._archive = self._archive, None
        if archive is not None:
            archive.close()


def _public_info(info: dict, rel: str, archive: object) -> dict:
    """The archive's info without machine paths: the file and its parents by base name."""
    doc = {k: v for k, v in info.items() if k not in ("path", "parents", "parent_chain")}
    doc["archive"] = rel
    doc["parents"] = [os.path.basename(p) for p in info.get("parents") or []]
    doc["parent_chain"] = [os.path.basename(p) for p in info.get("parent_chain") or []]
    doc["files"] = [{"path": m.path, "size": m.size, "mode": m.mode, "mtime": m.mtime}
                    for m in archive.members()]  # type: ignore[attr-defined]
    return doc


def _content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or OCTET_STREAM


class Catalog:
    """The objects of DIR. Thread-safe; ``close()`` releases every archive and file."""

    def __init__(self, root: str, verify: str = "crc", ttl: float = SCAN_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = os.path.abspath(root)
        if not os.path.isdir(self.root):
            raise NotADirectoryError(errno.ENOTDIR, f"{root} is not a directory")
        self._verify = verify
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._sources: dict[str, Source] = {}
        self._table: dict[str, S3Object] = {}
        self._keys: list[str] = []
        self._scanned_at = -float("inf")
        # Replaced sources may still be read by requests in flight: closed at the end.
        self._retired: list[Source] = []
        self._failed: dict[str, Version] = {}

    def listing(self) -> list[S3Object]:
        """Every object, sorted by key (UTF-8 byte order, as S3 lists), from a fresh scan."""
        with self._lock:
            self._scan()
            return [self._table[k] for k in self._keys]

    def lookup(self, key: str) -> S3Object | None:
        with self._lock:
            if self._clock() - self._scanned_at > self._ttl:
                self._scan()
            obj = self._table.get(key)
            if obj is not None and obj.source.current_version() != obj.source.version:
                self._scan()
                obj = self._table.get(key)
            return obj

    def close(self) -> None:
        with self._lock:
            for src in list(self._sources.values()) + self._retired:
                try:
                    src.close()
                except OSError as e:
                    log.error("closing %s: %s", src.rel, e)
            self._sources.clear()
            self._retired.clear()

    # ---- scanning -------------------------------------------------------------------

    def _scan(self) -> None:
        found: dict[str, os.stat_result] = {}
        self._walk("", found)
        sources: dict[str, Source] = {}
        for rel, st in found.items():
            version = file_version(st)
            old = self._sources.get(rel)
            if old is not None and old.current_version() == old.version:
                sources[rel] = old
                continue
            src = self._open(rel, st, version)
            if src is not None:
                sources[rel] = src
        for rel, old in self._sources.items():
            if sources.get(rel) is not old:
                self._retired.append(old)
        self._sources = sources
        table = {o.key: o for s in sources.values() for o in s.objects}
        self._table = table
        self._keys = sorted(table, key=lambda k: k.encode("utf-8"))
        self._scanned_at = self._clock()

    def _open(self, rel: str, st: os.stat_result, version: Version) -> Source | None:
        if rel.endswith(ARCHIVE_SUFFIX):
            src: Source = ArchiveSource(self.root, rel, version, st.st_mtime, self._verify)
            try:
                src.load()  # type: ignore[attr-defined]
            except Exception as e:  # noqa: BLE001 - hxz.FormatError, OSError...: one line
                if self._failed.get(rel) != version:
                    self._failed[rel] = version
                    log.warning("%s: not served: %s", rel, e)
                return None
            self._failed.pop(rel, None)
            return src
        raw = RawSource(self.root, rel, version, st.st_mtime)
        raw.load(st.st_size)
        return raw

    def _walk(self, rel_dir: str, found: dict[str, os.stat_result]) -> None:
        path = os.path.join(self.root, rel_dir) if rel_dir else self.root
        try:
            entries = list(os.scandir(path))
        except OSError as e:
            log.warning("cannot list %s: %s", rel_dir or ".", e.strerror)
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                continue  # not a valid key
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                self._walk(rel, found)
            elif stat.S_ISREG(st.st_mode):
                found[rel] = st
