"""The sources of versions by reference: an ``s3://bucket/prefix/``, an ``az://container/prefix/`` or
``gs://bucket/prefix/`` in the store's own service, or a shared local folder whose files a version names where
they are (docs/design.md, "Versions by reference").

A :class:`Source` lists its files as reference entries (keeping a previous table's entry whole where the file did
not change, and reading a new or changed file at most once, to hash it, never keeping its bytes), and reads one
entry back pinned to what was committed: an S3 GET by VersionId or ``If-Match`` on the ETag (Azure: ``If-Match``;
GCS: the generation); a local file whose size, mtime and inode are still the entry's. What differs is an
:class:`IntegrityError` naming the source
key and what differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar, cast
from urllib.parse import unquote, urlsplit

from . import layout
from .backends import (
    AzureBackend,
    Backend,
    BlobInfo,
    GCSBackend,
    GCSObjectInfo,
    Head,
    KeyMissing,
    ObjectInfo,
    PreconditionFailed,
    S3Backend,
    cloud_source_location,
)
from .config import AWS_ENDPOINT, SourceOptions, StoreSettings
from .errors import ConfigError, ConflictError, InputError, IntegrityError, UnsafePathError
from .models import FileEntry, ReferenceEntry, References
from .staging import ignore_rules
from .tree import validate_entries

__all__ = [
    "AzureSource",
    "FileSource",
    "GCSSource",
    "S3Source",
    "Source",
    "SourceChanged",
    "UnreachableSource",
    "open_source",
]

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
    """The prefix, ending in ``/``: ``s3://bucket/prefix/``, ``az://container/prefix/``, ``gs://bucket/prefix/``
    or ``file:///shared/folder/``."""
    kind: str
    endpoint: str | None = None
    """The endpoint of an ``s3://`` source reached with source options of its own (what its table records)."""

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


def open_source(url: str, settings: StoreSettings, options: SourceOptions | None = None) -> Source:
    """The source at ``url``: ``s3://bucket/prefix`` (on the store's endpoint and credentials, or on those of
    ``options``), ``az://`` or ``gs://`` (only on a store of that service, with its credentials), ``file:///path``
    or a local path. ``InputError`` for anything else, and for ``options`` of a source that is not ``s3://``."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if options is not None and scheme != "s3":
        raise InputError(
            f"source options (an endpoint or credentials of its own) are for an s3:// source, not {url!r}; "
            "leave them out (GITFREE_SOURCE_*, --source-*)"
        )
    if scheme == "s3":
        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise InputError(f"the source {url!r} names no bucket: write it as s3://BUCKET/PREFIX/")
        if options is not None:
            source = S3Source(S3Backend(bucket, prefix, options.settings(settings)))
            source.endpoint = options.endpoint()
            return source
        return S3Source(S3Backend(bucket, prefix, settings))
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"the source {url!r}: a file:// URL names a local path, e.g. file:///shared/images")
        return FileSource(Path(unquote(parts.path)))
    if scheme in ("az", "gs"):
        return _cloud_source(url, scheme, settings)
    if scheme:
        raise InputError(
            f"the source {url!r} has the scheme {scheme!r}; a version by reference takes s3://BUCKET/PREFIX/, "
            "az://CONTAINER/PREFIX/, gs://BUCKET/PREFIX/, file:///PATH or a local path"
        )
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", url) and not os.path.lexists(url):  # s3:/b/p, s3:b/p: a typo
        raise InputError(
            f"the source {url!r} is neither a folder nor a URL; write a URL with '://' (s3://BUCKET/PREFIX/, "
            "file:///PATH) or the path of a folder"
        )
    return FileSource(Path(url).expanduser().absolute())


def _checked_paths(url: str, paths: list[str]) -> None:
    """The readers' path rules on the names a source lists (one ``InputError`` naming the first refused), and valid
    UTF-8 (a folder's name that is not arrives as surrogates, which no table or listing can hold)."""
    for path in paths:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"the source {url} holds a name that is not valid UTF-8 (its bytes are {os.fsencode(path)!r}), which "
                "a version cannot hold; rename or remove it"
            ) from None
    try:
        validate_entries([FileEntry(path=path, md5="0" * 32) for path in paths])
    except UnsafePathError as exc:
        raise InputError(
            f"the source {url} holds a name a version cannot hold ({str(exc).split(';')[0].removeprefix('a version ')}"
            "); rename or remove it"
        ) from None


def _empty(url: str, backend: Backend | None = None) -> InputError:
    """A source prefix with nothing under it; one that is the key of an object (a file's URL given for a
    folder's) says so, and what to give instead."""
    if backend is not None and backend.names_an_object():
        named = url.rstrip("/")
        folder = named.rsplit("/", 1)[0] + "/"
        return InputError(
            f"{named} names an object, not a prefix of objects: a commit by reference versions every object "
            f"under a prefix, so give its folder ({folder}), or copy the object into a local folder and commit "
            "that without by_reference=True",
            options=(("by_reference=True", "--by-reference"),),
        )
    return InputError(f"{url} holds no objects; check the prefix")


class _Listed(Protocol):
    """What a listing of object keys gives of each (S3's, Azure's and GCS's own info)."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...


_InfoT = TypeVar("_InfoT", bound=_Listed)


def _listed_keys(
    url: str, listing: Callable[[], Iterable[_InfoT]], backend: Backend, named: Callable[[ConfigError], str]
) -> list[_InfoT]:
    """The keys below a source prefix, sorted, without folder markers, checked by the readers' path rules:
    ``ConfigError`` "cannot list the source" (its message as ``named`` words it), or the source's ``InputError``
    when it holds nothing."""
    try:
        found = [info for info in listing() if not _folder_marker(info)]
    except ConfigError as exc:
        raise ConfigError(f"cannot list the source {url}: {named(exc)}") from None
    if not found:
        raise _empty(url, backend)
    _checked_paths(url, [info.key for info in found])
    return sorted(found, key=lambda info: info.key)


def _entries_of(
    listed: list[_InfoT],
    kept: dict[str, ReferenceEntry],
    unchanged: Callable[[ReferenceEntry, _InfoT], bool],
    entry: Callable[[_InfoT], ReferenceEntry],
) -> list[ReferenceEntry]:
    """One entry per listed key, in order: the kept one where ``unchanged`` says the key is, else ``entry`` of it
    (a HEAD or a hashing read: :data:`_HEAD_JOBS` at once)."""
    same = {info.key: old for info in listed if (old := kept.get(info.key)) is not None and unchanged(old, info)}
    fresh = [info for info in listed if info.key not in same]
    with ThreadPoolExecutor(max_workers=_HEAD_JOBS) as pool:
        new = dict(zip((info.key for info in fresh), pool.map(entry, fresh), strict=True))
    return [same.get(info.key) or new[info.key] for info in listed]


class S3Source(Source):
    """An ``s3://bucket/prefix/`` on the store's endpoint and credentials."""

    kind = "s3"

    def __init__(self, backend: S3Backend) -> None:
        self.backend = backend
        self.url = f"{backend.url}/"
        self.bucket, self.prefix = backend.bucket, backend.prefix

    def _listed(self) -> list[ObjectInfo]:
        return _listed_keys(self.url, lambda: self.backend.scan(""), self.backend, self._settings_named)

    def entries(self, previous: References | None) -> list[ReferenceEntry]:
        kept, listed = _kept(previous, self.url), self._listed()
        try:
            return _entries_of(listed, kept, _unchanged_s3, self._entry)
        except ConfigError as exc:  # listed, but not readable (a HEAD or a hashing read denied)
            raise ConfigError(f"cannot read the source {self.url}: {self._settings_named(exc)}") from None

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
            try:
                _, chunks = self.backend.read_pinned(info.key, version_id=head.version_id, etag=head.etag)
                md5 = _hashed(chunks)
            except (KeyMissing, PreconditionFailed):
                raise ConflictError(f"{url} changed while it was imported; run the commit again") from None
            entry = entry.model_copy(update={"md5": md5})
        return entry

    def _pinned(self, entry: ReferenceEntry, start: int | None = None, end: int | None = None) -> Iterator[bytes]:
        etag = entry.etag or ""
        try:
            head, chunks = self.backend.read_pinned(
                entry.path, version_id=entry.version_id, etag=etag, start=start, end=end
            )
        except KeyMissing:
            if entry.version_id:  # the pinned version was deleted: the key's bytes now, if they are the same ETag
                return self._unpinned(entry, start, end)
            raise self._changed(entry, "it no longer exists") from None
        except PreconditionFailed:
            raise self._changed(entry, f"ETag was {etag}, is {self._etag_now(entry)}") from None
        if head.etag != etag:
            raise self._changed(entry, f"ETag was {etag}, is {head.etag}")
        return chunks

    def _unpinned(self, entry: ReferenceEntry, start: int | None, end: int | None) -> Iterator[bytes]:
        """A read whose pinned VersionId no longer exists: the key as it is now, with ``If-Match`` on the entry's
        ETag (and hash-checked by the reader, as every read is), since a commit finding the same size and ETag
        keeps the entry, VersionId included, and could never make the version readable again."""
        gone = f"its version {entry.version_id} no longer exists"
        try:
            head, chunks = self.backend.read_pinned(
                entry.path, version_id=None, etag=entry.etag or "", start=start, end=end
            )
        except KeyMissing:
            raise self._changed(entry, f"{gone}, nor does the key") from None
        except PreconditionFailed:
            now = self._etag_now(entry)
            raise self._changed(entry, f"{gone}, and the key's ETag is {now}, not {entry.etag}") from None
        if head.etag != (entry.etag or ""):
            raise self._changed(entry, f"{gone}, and the key's ETag is {head.etag}, not {entry.etag}")
        return chunks

    def _settings_named(self, exc: ConfigError) -> str:
        """``exc``'s message, naming the source options' variables where the source has options of its own."""
        if self.endpoint is None:
            return str(exc)
        return re.sub(
            r"\bGITFREE_(ENDPOINT_URL|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|REGION|PROFILE)\b",
            r"GITFREE_SOURCE_\1",
            str(exc),
        )

    def drift_error(self, entry: ReferenceEntry, *, missing: bool) -> IntegrityError:
        """What a pinned read or copy of ``entry`` says when the key (or its version) is gone (``missing``) or its
        ETag is no longer the entry's."""
        if missing:
            return self._changed(
                entry, f"its version {entry.version_id} no longer exists" if entry.version_id else "it no longer exists"
            )
        return self._changed(entry, f"ETag was {entry.etag}, is {self._etag_now(entry)}")

    def _etag_now(self, entry: ReferenceEntry) -> str:
        try:
            return self.backend.head(entry.path).etag
        except KeyMissing:
            return "gone"

    @contextlib.contextmanager
    def _options_named(self) -> Iterator[None]:
        """A ``ConfigError`` of a read or look with source options of its own names ``GITFREE_SOURCE_*`` (the
        settings to fix), not the store's ``GITFREE_*``, which a reader would check in vain."""
        try:
            yield
        except ConfigError as exc:
            if self.endpoint is None:
                raise
            raise ConfigError(self._settings_named(exc)) from None

    def read_into(self, entry: ReferenceEntry, out: BinaryIO) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        with self._options_named():
            for chunk in self._pinned(entry):
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    def read_range(self, entry: ReferenceEntry, start: int, end: int) -> bytes:
        end = min(end, entry.size)
        if end <= start:
            return b""
        with self._options_named():
            return b"".join(self._pinned(entry, start, end))

    def drift(self, entries: Sequence[ReferenceEntry]) -> list[str | None]:
        first = entries[0]
        try:
            with self._options_named():
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


def _folder_marker(info: _Listed) -> bool:
    """A console's zero-byte folder marker: ``sub/`` below the prefix, or the prefix's own ``prefix/`` (the key
    ``""`` once the prefix is cut off, which a console's "Create folder" makes for the folder itself)."""
    return info.size == 0 and (info.key.endswith("/") or not info.key)


class UnreachableSource(Source):
    """The ``s3://`` source of a reference table that names an endpoint this worker has no source options for:
    every read is a ``ConfigError`` saying what to set (the table names the endpoint, never a credential)."""

    kind = "s3"

    def __init__(self, url: str, endpoint: str, others: Sequence[str] = ()) -> None:
        self.url, self.endpoint, self._where = url, endpoint, endpoint
        self._others = sorted(others)
        """The endpoints this worker has source options for (none of them this one)."""

    def _unreachable(self) -> ConfigError:
        if self._where == AWS_ENDPOINT:
            where, setting = "AWS S3 with credentials of its own", ""
        else:
            where, setting = self._where, f"GITFREE_SOURCE_ENDPOINT_URL={self._where} and "
        others = f" (this worker's are for {', '.join(self._others)})" if self._others else ""
        return ConfigError(
            f"the files of {self.url} are on {where}, and no source options are set for it{others}: set {setting}"
            "GITFREE_SOURCE_ACCESS_KEY_ID / GITFREE_SOURCE_SECRET_ACCESS_KEY (or GITFREE_SOURCE_PROFILE), or pass "
            "Store(source_options=...)"
        )

    def entries(self, previous: References | None) -> list[ReferenceEntry]:
        raise self._unreachable()

    def read_into(self, entry: ReferenceEntry, out: BinaryIO) -> str:
        raise self._unreachable()

    def read_range(self, entry: ReferenceEntry, start: int, end: int) -> bytes:
        raise self._unreachable()


def _unchanged_s3(old: ReferenceEntry, info: ObjectInfo) -> bool:
    """The same key with the same size and ETag is the same bytes (a plain ETag is their MD5, a multipart one the
    MD5 of the same parts' MD5s, an SSE-KMS one changes at every upload): its entry is kept whole."""
    return old.size == info.size and old.etag == info.etag


class FileSource(Source):
    """A local folder on a filesystem every worker shares, referenced by path, size, mtime and inode
    (and its device, recorded but not compared: see :func:`_same_file`)."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        # '%', '#' and '?' escaped: the URL is parsed (and unquoted) again by every reader of the table
        path = root.as_posix().rstrip("/").replace("%", "%25").replace("#", "%23").replace("?", "%3F")
        self.url = f"file://{path}/"

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every file a commit by upload would take (DVC's ignore rules, :func:`.staging.ignore_rules`), so the
        same folder makes the same listing either way and ``.git`` or ignored files never become references."""
        kept = ignore_rules(self.root)
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(self.root / rel) as found:
                items = {item.name: (item, item.stat(follow_symlinks=False)) for item in found}
            dirs = [name for name, (_, st) in items.items() if stat.S_ISDIR(st.st_mode)]
            files = [name for name, (_, st) in items.items() if not stat.S_ISDIR(st.st_mode)]
            kept_dirs, kept_files = kept(str(self.root / rel) if rel else str(self.root), dirs, files)
            stack.extend(f"{rel}{name}/" for name in kept_dirs)
            for name in kept_files:
                path, st = f"{rel}{name}", items[name][1]
                if not stat.S_ISREG(st.st_mode):
                    raise InputError(
                        f"{self.url}{path} is not a regular file (a link or a special file); a version by "
                        "reference holds regular files only"
                    )
                yield path, st

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
                md5 = _md5_regular(self.root / path)
                again = os.stat(self.root / path, follow_symlinks=False)
            except FileNotFoundError:
                raise ConflictError(f"{self.url}{path} vanished while it was imported; run the commit again") from None
            moved = (again.st_size, again.st_mtime_ns, again.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino)
            if md5 is None or moved:
                raise ConflictError(f"{self.url}{path} changed while it was imported; run the commit again")
            return now.model_copy(update={"md5": md5})

        with ThreadPoolExecutor(max_workers=_HEAD_JOBS) as pool:
            return list(pool.map(entry, listed))

    def _opened(self, entry: ReferenceEntry) -> BinaryIO:
        try:
            f = _open_regular(self.root / entry.path)
        except (FileNotFoundError, NotADirectoryError):  # gone, or a folder on its path is now a file
            raise self._changed(entry, "it no longer exists") from None
        if f is None:
            raise self._changed(entry, "it is no longer a regular file (a FIFO, a device or a link to one)")
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


def _open_regular(path: Path) -> BinaryIO | None:
    """``path`` opened for reading if it is a regular file now, else ``None``: opened without blocking, so a FIFO
    put in a file's place (or a link to one) is refused at once instead of hanging the read or the commit forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _md5_regular(path: Path) -> str | None:
    """The md5 of the regular file at ``path``, or ``None`` if it is no longer one (see :func:`_open_regular`)."""
    f = _open_regular(path)
    if f is None:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    with f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _same_file(old: ReferenceEntry, now: ReferenceEntry) -> bool:
    """The same file, unchanged: its size, mtime and inode. Not its device: the device number of a network share
    is each client's own (NFS gives every mount its own), so another worker, or the same one after a remount,
    sees another for the very same file; the md5 of the bytes read is checked at every read anyway (R1)."""
    return (old.size, old.mtime_ns, old.inode) == (now.size, now.mtime_ns, now.inode)


# --------------------------------------------------------------------------- az:// and gs:// sources

_SERVICES = {"s3": "S3", "az": "Azure Blob Storage", "gs": "Google Cloud Storage"}


def _cloud_source(url: str, scheme: str, settings: StoreSettings) -> Source:
    """An ``az://`` or ``gs://`` source, only in the store's own service (read with the store's credentials)."""
    store = settings.resolved_store()
    if (urlsplit(store).scheme.lower() if "://" in store else "") != scheme:
        article = "an" if scheme == "az" else "a"
        raise InputError(
            f"the source {url} is on {_SERVICES[scheme]} and the store {store} is not: a version by reference reads "
            f"its source with the store's own credentials, so {article} {scheme}:// source needs {article} "
            f"{scheme}:// store (or commit without --by-reference to upload a copy)"
        )
    location = cloud_source_location(url)
    if scheme == "az":
        return AzureSource(AzureBackend(*location, settings))
    return GCSSource(GCSBackend(*location, settings))


def _source_worded(exc: ConfigError) -> str:
    """A store error's message as a source's: "fix the URL", not "fix the store URL"."""
    return str(exc).replace(" the store URL", " the URL")


def _kept(previous: References | None, url: str) -> dict[str, ReferenceEntry]:
    return {e.path: e for e in previous.entries} if previous and previous.source == url else {}


def _hashed(chunks: Iterator[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


class AzureSource(Source):
    """An ``az://container/prefix/`` in the store's Azure account, on the store's credentials.

    The md5 of a blob is its Content-MD5 (List Blobs gives it; the service sets it for a single Put Blob), else
    (a block list: the upload of a large blob in blocks) one streamed read hashes it. Reads are pinned with
    ``If-Match`` on the ETag (and the versionId when the account versions blobs)."""

    kind = "az"

    def __init__(self, backend: AzureBackend) -> None:
        self.backend = backend
        self.url = f"{backend.url}/"

    def _listed(self) -> list[BlobInfo]:
        return _listed_keys(self.url, lambda: self.backend.blobs(""), self.backend, _source_worded)

    def entries(self, previous: References | None) -> list[ReferenceEntry]:
        # The same blob with the same size and ETag is the same bytes (an ETag changes at every write).
        return _entries_of(
            self._listed(),
            _kept(previous, self.url),
            lambda old, b: (old.size, old.etag) == (b.size, b.etag),
            self._entry,
        )

    def _entry(self, blob: BlobInfo) -> ReferenceEntry:
        """A new or changed blob: its Content-MD5, else one read pinned to the listed ETag to hash it."""
        entry = ReferenceEntry(
            path=blob.key, md5=blob.md5 or "0" * 32, size=blob.size, etag=blob.etag, version_id=blob.version_id
        )
        if blob.md5 is not None:
            return entry
        try:
            served, chunks = self.backend.read_pinned(blob.key, etag=blob.etag, version_id=blob.version_id)
            if served != blob.etag:  # a server that ignored If-Match: these are other bytes
                raise PreconditionFailed(blob.key)
            md5 = _hashed(chunks)
        except KeyMissing:
            raise ConflictError(f"{self.url}{blob.key} vanished while it was imported; run the commit again") from None
        except PreconditionFailed:
            raise ConflictError(f"{self.url}{blob.key} changed while it was imported; run the commit again") from None
        return entry.model_copy(update={"md5": md5})

    def _pinned(self, entry: ReferenceEntry, start: int | None = None, end: int | None = None) -> Iterator[bytes]:
        etag = entry.etag or ""
        try:
            served, chunks = self.backend.read_pinned(
                entry.path, etag=etag, version_id=entry.version_id, start=start, end=end
            )
        except KeyMissing:
            what = f"its version {entry.version_id} no longer exists" if entry.version_id else "it no longer exists"
            raise self._changed(entry, what) from None
        except PreconditionFailed:  # a GET with If-Match of a blob that is gone is answered 412 too
            try:
                what = f"ETag was {etag}, is {self.backend.etag(entry.path)}"
            except KeyMissing:
                what = "it no longer exists"
            raise self._changed(entry, what) from None
        if served != etag:
            raise self._changed(entry, f"ETag was {etag}, is {served}")
        return chunks

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


class GCSSource(Source):
    """A ``gs://bucket/prefix/`` on the store's Google Cloud credentials (or emulator).

    The md5 of an object is its md5Hash, except for a composite object (``componentCount``), which GCS gives
    none: one streamed read hashes it. Reads are pinned to the generation listed at the commit (kept in the
    entry's ``version_id``): a generation is never rewritten, so it reads the committed bytes while it exists."""

    kind = "gs"

    def __init__(self, backend: GCSBackend) -> None:
        self.backend = backend
        self.url = f"{backend.url}/"

    def _listed(self) -> list[GCSObjectInfo]:
        return _listed_keys(self.url, lambda: self.backend.objects(""), self.backend, _source_worded)

    def entries(self, previous: References | None) -> list[ReferenceEntry]:
        # The same generation is the same bytes (a generation changes at every write, not at a metadata update).
        return _entries_of(
            self._listed(),
            _kept(previous, self.url),
            lambda old, o: (old.size, old.version_id) == (o.size, str(o.generation)),
            self._entry,
        )

    def _entry(self, info: GCSObjectInfo) -> ReferenceEntry:
        """A new or changed object: its md5Hash, else one read of the listed generation to hash it."""
        entry = ReferenceEntry(
            path=info.key, md5=info.md5 or "0" * 32, size=info.size, etag=info.etag, version_id=str(info.generation)
        )
        if info.md5 is not None:
            return entry
        digest = hashlib.md5(usedforsecurity=False)
        try:
            self.backend.read_generation(info.key, info.generation, digest.update)
        except (KeyMissing, PreconditionFailed):
            raise ConflictError(f"{self.url}{info.key} changed while it was imported; run the commit again") from None
        return entry.model_copy(update={"md5": digest.hexdigest()})

    def _read(self, entry: ReferenceEntry, sink: Callable[[bytes], object], start: int | None, end: int | None) -> None:
        generation = int(entry.version_id or 0)
        try:
            self.backend.read_generation(entry.path, generation, sink, start, end)
        except (KeyMissing, PreconditionFailed):
            try:
                now = f"it is now generation {self.backend.generation(entry.path)}"
            except KeyMissing:
                now = "it no longer exists"
            raise self._changed(entry, f"its generation {generation} no longer exists ({now})") from None

    def read_into(self, entry: ReferenceEntry, out: BinaryIO) -> str:
        digest = hashlib.md5(usedforsecurity=False)

        def sink(chunk: bytes) -> None:
            digest.update(chunk)
            out.write(chunk)

        self._read(entry, sink, None, None)
        return digest.hexdigest()

    def read_range(self, entry: ReferenceEntry, start: int, end: int) -> bytes:
        end = min(end, entry.size)
        if end <= start:
            return b""
        parts: list[bytes] = []
        self._read(entry, parts.append, start, end)
        return b"".join(parts)


def _file_drift(entry: ReferenceEntry, st: os.stat_result) -> str | None:
    what = []
    if st.st_size != entry.size:
        what.append(f"size was {entry.size}, is {st.st_size}")
    if st.st_ino != entry.inode:  # not the device: each client of a share numbers it its own way (see _same_file)
        what.append(f"it is another file (inode {entry.inode}, is {st.st_ino})")
    if st.st_mtime_ns != entry.mtime_ns:
        what.append(f"modified: mtime was {_when(entry.mtime_ns or 0)}, is {_when(st.st_mtime_ns)}")
    return "; ".join(what) or None


def _when(ns: int) -> str:
    """A file time in nanoseconds since the epoch, as UTC to the nanosecond (``2026-12-02 14:43:16.324968867``)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M:%S}.{rest:09d} UTC"
