"""The sources of versions by reference: an ``s3://bucket/prefix/`` or a shared local folder whose files a version
names where they are (docs/design.md, "Versions by reference").

A :class:`Source` lists its files as reference entries (keeping a previous table's entry whole where the file did
not change, and reading a new or changed file at most once, to hash it, never keeping its bytes), and reads one
entry back pinned to what was committed: an S3 GET by VersionId or ``If-Match`` on the ETag; a local file whose
size, mtime, inode and device are still the entry's. What differs is an :class:`IntegrityError` naming the source
key and what differs.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import unquote, urlsplit

from . import layout
from .backends import Head, KeyMissing, ObjectInfo, PreconditionFailed, S3Backend
from .config import StoreSettings
from .errors import ConfigError, ConflictError, InputError, IntegrityError, UnsafePathError
from .localfs import md5_file
from .models import FileEntry, ReferenceEntry, References
from .tree import validate_entries

__all__ = ["FileSource", "S3Source", "Source", "SourceChanged", "open_source"]

_HEAD_JOBS = 32
"""HEADs (and hashing reads) in flight while a commit looks at new or changed keys."""
_CHUNK = 1 << 20


class SourceChanged(IntegrityError):
    """A source object no longer holds what a version by reference committed: ``what`` says what differs
    ("ETag was …, is …", "it no longer exists", …), the message names the key and what to do."""

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message)
        self.what = what


class _Sink(io.RawIOBase):
    """Where ``fsck --deep`` streams a source object it re-hashes: the bytes are counted, never kept."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


class Source(ABC):
    """Where the files of a version by reference are."""

    url: str
    """The prefix, ending in ``/``: ``s3://bucket/prefix/`` or ``file:///shared/folder/``."""
    kind: str

    @abstractmethod
    def entries(self, previous: References | None) -> list[ReferenceEntry]:
        """Every file of the source now, sorted by path: ``previous``'s entry where the file is unchanged."""

    @abstractmethod
    def read_into(self, entry: ReferenceEntry, out: BinaryIO) -> str:
        """Write the entry's bytes, as they are now, to ``out`` and return their md5; ``IntegrityError`` when
        the source no longer holds what was committed (naming the key and what differs)."""

    @abstractmethod
    def read_range(self, entry: ReferenceEntry, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of the entry (cut at its size), not hash-checked, pinned as a read is."""

    def drift(self, entries: Sequence[ReferenceEntry]) -> list[str | None]:
        """What differs now (``None``: nothing) for each of ``entries``, entries of one source object (one path,
        and one VersionId), for ``fsck``: S3 sends one HEAD (of that version when there is one), a folder one
        ``stat``, never a read of the bytes. ``ConfigError`` when the source cannot be looked at (credentials, a
        folder gone). This default, for a kind of source without a cheaper look, reads one byte of each entry
        pinned as a read is."""
        drift: list[str | None] = []
        for entry in entries:
            try:
                if entry.size:
                    self.read_range(entry, 0, 1)
                else:
                    self.read_into(entry, cast(BinaryIO, _Sink()))
                drift.append(None)
            except SourceChanged as exc:
                drift.append(exc.what)
            except KeyMissing:
                drift.append(_gone(entry))
        return drift

    def rehash(self, entry: ReferenceEntry) -> tuple[str | None, int]:
        """Read the entry pinned, as a read does, hash its bytes and keep none of them: what differs (``None``:
        nothing: the md5 and size are the entry's) and the bytes read. ``ConfigError`` when it cannot be read."""
        sink = _Sink()
        try:
            got = self.read_into(entry, cast(BinaryIO, sink))
        except SourceChanged as exc:
            return exc.what, sink.size
        except KeyMissing:
            return _gone(entry), sink.size
        except OSError as exc:  # a folder's file that cannot be opened
            raise ConfigError(f"cannot read the source {self.url}: {exc.strerror or exc} ({entry.path})") from None
        if (got, sink.size) != (entry.md5, entry.size):
            return f"md5 of its bytes is {got} ({sink.size} bytes), was {entry.md5} ({entry.size} bytes)", sink.size
        return None, sink.size

    def key_url(self, entry: ReferenceEntry) -> str:
        return f"{self.url}{entry.path}"

    def _changed(self, entry: ReferenceEntry, what: str) -> SourceChanged:
        return SourceChanged(
            f"{self.key_url(entry)} changed since it was committed by reference: {what}; nothing was read from it "
            "(restore it, or commit the source again; materialize a version while its source holds it)",
            what,
        )


def open_source(url: str, settings: StoreSettings) -> Source:
    """The source at ``url``: ``s3://bucket/prefix`` (on the store's endpoint and credentials), ``file:///path``
    or a local path. ``InputError`` for anything else."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "s3":
        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise InputError(f"the source {url!r} names no bucket: write it as s3://BUCKET/PREFIX/")
        return S3Source(S3Backend(bucket, prefix, settings))
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"the source {url!r}: a file:// URL names a local path, e.g. file:///shared/images")
        return FileSource(Path(unquote(parts.path)))
    if scheme:
        raise InputError(
            f"the source {url!r} has the scheme {scheme!r}; a version by reference takes s3://BUCKET/PREFIX/, "
            "file:///PATH or a local path"
        )
    return FileSource(Path(url).expanduser().absolute())


def _checked_paths(url: str, paths: list[str]) -> None:
    """The readers' path rules on the names a source lists (one ``InputError`` naming the first refused)."""
    try:
        validate_entries([FileEntry(path=path, md5="0" * 32) for path in paths])
    except UnsafePathError as exc:
        raise InputError(
            f"the source {url} holds a name a version cannot hold ({str(exc).split(';')[0].removeprefix('a version ')}"
            "); rename or remove it"
        ) from None


def _empty(url: str) -> InputError:
    return InputError(f"{url} holds no objects; check the prefix")


class S3Source(Source):
    """An ``s3://bucket/prefix/`` on the store's endpoint and credentials."""

    kind = "s3"

    def __init__(self, backend: S3Backend) -> None:
        self.backend = backend
        self.url = f"{backend.url}/"
        self.bucket, self.prefix = backend.bucket, backend.prefix

    def _listed(self) -> list[ObjectInfo]:
        try:
            found = [i for i in self.backend.scan("") if not (i.key.endswith("/") and i.size == 0)]
        except ConfigError as exc:
            raise ConfigError(f"cannot list the source {self.url}: {exc}") from None
        if not found:
            raise _empty(self.url)
        _checked_paths(self.url, [i.key for i in found])
        return sorted(found, key=lambda i: i.key)

    def entries(self, previous: References | None) -> list[ReferenceEntry]:
        kept = {e.path: e for e in previous.entries} if previous and previous.source == self.url else {}
        listed = self._listed()
        same = {i.key: kept[i.key] for i in listed if _unchanged_s3(kept.get(i.key), i)}
        fresh = [i for i in listed if i.key not in same]
        with ThreadPoolExecutor(max_workers=_HEAD_JOBS) as pool:
            new = dict(zip((i.key for i in fresh), pool.map(self._entry, fresh), strict=True))
        return [same.get(i.key) or new[i.key] for i in listed]

    def _entry(self, info: ObjectInfo) -> ReferenceEntry:
        """A new or changed key: one HEAD (its VersionId and encryption), and one read to hash it when its ETag
        is not its md5 (multipart, SSE-KMS, SSE-C). ``ConflictError`` if it changed or vanished since the LIST."""
        url = f"{self.url}{info.key}"
        try:
            head = self.backend.head(info.key)
        except KeyMissing:
            raise ConflictError(f"{url} vanished while it was imported; run the commit again") from None
        if head.size != info.size or head.etag != (info.etag or ""):
            raise ConflictError(f"{url} changed while it was imported; run the commit again")
        md5 = layout.md5_of_etag(head.etag, encrypted=head.encrypted)
        entry = ReferenceEntry(
            path=info.key, md5=md5 or "0" * 32, size=head.size, etag=head.etag, version_id=head.version_id
        )
        if md5 is None:
            digest = hashlib.md5(usedforsecurity=False)
            try:
                _, chunks = self.backend.read_pinned(info.key, version_id=head.version_id, etag=head.etag)
                for chunk in chunks:
                    digest.update(chunk)
            except (KeyMissing, PreconditionFailed):
                raise ConflictError(f"{url} changed while it was imported; run the commit again") from None
            entry = entry.model_copy(update={"md5": digest.hexdigest()})
        return entry

    def _pinned(self, entry: ReferenceEntry, start: int | None = None, end: int | None = None) -> Iterator[bytes]:
        etag = entry.etag or ""
        try:
            head, chunks = self.backend.read_pinned(
                entry.path, version_id=entry.version_id, etag=etag, start=start, end=end
            )
        except KeyMissing:
            what = f"its version {entry.version_id} no longer exists" if entry.version_id else "it no longer exists"
            raise self._changed(entry, what) from None
        except PreconditionFailed:
            raise self._changed(entry, f"ETag was {etag}, is {self._etag_now(entry)}") from None
        if head.etag != etag:
            raise self._changed(entry, f"ETag was {etag}, is {head.etag}")
        return chunks

    def _etag_now(self, entry: ReferenceEntry) -> str:
        try:
            return self.backend.head(entry.path).etag
        except KeyMissing:
            return "gone"

    def read_into(self, entry: ReferenceEntry, out: BinaryIO) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in self._pinned(entry):
            digest.update(chunk)
            out.write(chunk)
        return digest.hexdigest()

    def read_range(self, entry: ReferenceEntry, start: int, end: int) -> bytes:
        end = min(end, entry.size)
        if end <= start:
            return b""
        return b"".join(self._pinned(entry, start, end))

    def drift(self, entries: Sequence[ReferenceEntry]) -> list[str | None]:
        first = entries[0]
        try:
            head = self.backend.head(first.path, first.version_id)
        except KeyMissing:
            return [_gone(entry) for entry in entries]
        return [_s3_drift(entry, head) for entry in entries]


def _gone(entry: ReferenceEntry) -> str:
    return f"its version {entry.version_id} no longer exists" if entry.version_id else "it no longer exists"


def _s3_drift(entry: ReferenceEntry, head: Head) -> str | None:
    what = []
    if head.size != entry.size:
        what.append(f"size was {entry.size}, is {head.size}")
    if head.etag != entry.etag:
        what.append(f"ETag was {entry.etag}, is {head.etag}")
    return "; ".join(what) or None


def _unchanged_s3(old: ReferenceEntry | None, info: ObjectInfo) -> bool:
    """The same key with the same size and ETag is the same bytes (a plain ETag is their MD5, a multipart one the
    MD5 of the same parts' MD5s, an SSE-KMS one changes at every upload): its entry is kept whole."""
    return old is not None and old.size == info.size and old.etag == info.etag


class FileSource(Source):
    """A local folder on a filesystem every worker shares, referenced by path, size, mtime, inode and device."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root.as_posix().rstrip('/')}/"

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(self.root / rel) as found:
                for item in found:
                    path = f"{rel}{item.name}"
                    st = item.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(f"{path}/")
                    elif stat.S_ISREG(st.st_mode):
                        yield path, st
                    else:
                        raise InputError(
                            f"{self.url}{path} is not a regular file (a link or a special file); a version by "
                            "reference holds regular files only"
                        )

    def _listed(self) -> list[tuple[str, os.stat_result]]:
        if not self.root.is_dir():
            raise InputError(f"the source {self.url} is not a folder; check the path")
        try:
            found = sorted(self._walk())
        except PermissionError as exc:
            raise ConfigError(f"cannot list the source {self.url}: {exc.strerror} ({exc.filename})") from None
        if not found:
            raise _empty(self.url)
        _checked_paths(self.url, [path for path, _ in found])
        return found

    def entries(self, previous: References | None) -> list[ReferenceEntry]:
        kept = {e.path: e for e in previous.entries} if previous and previous.source == self.url else {}
        listed = self._listed()

        def entry(item: tuple[str, os.stat_result]) -> ReferenceEntry:
            path, st = item
            now = ReferenceEntry(
                path=path, md5="0" * 32, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, device=st.st_dev
            )
            old = kept.get(path)
            if old is not None and _same_file(old, now):
                return old
            try:
                md5 = md5_file(self.root / path)
                again = os.stat(self.root / path, follow_symlinks=False)
            except FileNotFoundError:
                raise ConflictError(f"{self.url}{path} vanished while it was imported; run the commit again") from None
            if (again.st_size, again.st_mtime_ns, again.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
                raise ConflictError(f"{self.url}{path} changed while it was imported; run the commit again")
            return now.model_copy(update={"md5": md5})

        with ThreadPoolExecutor(max_workers=_HEAD_JOBS) as pool:
            return list(pool.map(entry, listed))

    def _opened(self, entry: ReferenceEntry) -> BinaryIO:
        try:
            f = open(self.root / entry.path, "rb")  # noqa: SIM115 - returned open
        except FileNotFoundError:
            raise self._changed(entry, "it no longer exists") from None
        self._check_stat(entry, os.fstat(f.fileno()), f)
        return f

    def _check_stat(self, entry: ReferenceEntry, st: os.stat_result, f: BinaryIO) -> None:
        now = entry.model_copy(update={"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino})
        now = now.model_copy(update={"device": st.st_dev})
        if not _same_file(entry, now):
            f.close()
            raise self._changed(entry, _file_drift(entry, st) or "changed")

    def read_into(self, entry: ReferenceEntry, out: BinaryIO) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        with self._opened(entry) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            self._check_stat(entry, os.fstat(f.fileno()), f)
        return digest.hexdigest()

    def read_range(self, entry: ReferenceEntry, start: int, end: int) -> bytes:
        end = min(end, entry.size)
        if end <= start:
            return b""
        with self._opened(entry) as f:
            f.seek(start)
            return f.read(end - start)

    def drift(self, entries: Sequence[ReferenceEntry]) -> list[str | None]:
        path = self.root / entries[0].path
        try:
            st = os.stat(path, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            if not self.root.is_dir():
                raise ConfigError(
                    f"cannot read the source {self.url}: it is no longer a folder (unmounted, moved or removed?)"
                ) from None
            return ["it no longer exists" for _ in entries]
        except OSError as exc:
            raise ConfigError(f"cannot read the source {self.url}: {exc.strerror} ({entries[0].path})") from None
        if not stat.S_ISREG(st.st_mode):
            return ["it is no longer a regular file" for _ in entries]
        return [_file_drift(entry, st) for entry in entries]


def _same_file(old: ReferenceEntry, now: ReferenceEntry) -> bool:
    return (old.size, old.mtime_ns, old.inode, old.device) == (now.size, now.mtime_ns, now.inode, now.device)


def _file_drift(entry: ReferenceEntry, st: os.stat_result) -> str | None:
    what = []
    if st.st_size != entry.size:
        what.append(f"size was {entry.size}, is {st.st_size}")
    if (st.st_ino, st.st_dev) != (entry.inode, entry.device):
        what.append(f"it is another file (inode {entry.inode} on device {entry.device}, is {st.st_ino} on {st.st_dev})")
    if st.st_mtime_ns != entry.mtime_ns:
        what.append(f"modified: mtime was {_when(entry.mtime_ns or 0)}, is {_when(st.st_mtime_ns)}")
    return "; ".join(what) or None


def _when(ns: int) -> str:
    """A file time in nanoseconds since the epoch, as UTC to the nanosecond (``2026-12-02 14:43:16.324968867``)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M:%S}.{rest:09d} UTC"
