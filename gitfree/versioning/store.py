"""The :class:`Store`: commit, pull, log, show, diff, tag and export dataset versions.

The commit protocol (DESIGN.md): open a lease, push the objects and prove them
present, create ``versions/<N+1>.json`` with ``If-None-Match: *`` (retrying with
the next number when another writer won), advance ``latest.json`` with
``If-Match``, close the lease.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from pydantic import BaseModel, JsonValue, SecretStr, ValidationError

from . import layout, leases
from .backends import Backend, FileBackend, KeyExists, KeyMissing, OutcomeUnknown, PreconditionFailed, open_backend
from .checkout import path_relation
from .tree import select, validate_entries, validate_path
from .config import StoreSettings
from .errors import ConfigError, ConflictError, GitfreeError, InputError, IntegrityError, NotFoundError
from .models import (
    Author,
    Diff,
    DiffEntry,
    Dropped,
    FileEntry,
    FsckReport,
    GcReport,
    InputRef,
    Latest,
    Lease,
    Output,
    StoreMarker,
    Tag,
    Uploads,
    Version,
    utcnow,
)
from .refs import Ref, parse_ref, validate_dataset_name, validate_tag_name
from .transfer import Transfer

if TYPE_CHECKING:
    from .staging import HashState

__all__ = ["Store"]

logger = logging.getLogger("gitfree")

ProgressFactory = Callable[[str, str], Callback]
"""``progress(description, unit)`` returns an fsspec callback for one phase (hashing, upload, download, checkout)."""

M = TypeVar("M", bound=BaseModel)

_probed: set[tuple[str, str | None]] = set()
_probed_lock = threading.Lock()
_READ_JOBS = 32
_TRANSFER_JOBS = 64
_HEAD_FIRST = 1024 * 1024
"""New objects at least this large are checked for (HEAD) before they are uploaded."""


class Gone(KeyMissing):
    """The version was dropped by garbage collection: its key holds a tombstone (``record``)."""

    def __init__(self, record: Dropped) -> None:
        super().__init__(layout.version_key(record.dataset, record.number))
        self.record = record


class Store:
    """A gitfree store: versioned datasets under one URL, with no git and no server but S3.

    Args:
        url: ``s3://bucket/prefix``, ``file:///path`` or a local path. Default: ``$GITFREE_STORE``,
            else a directory under the user's data dir.
        cache_dir: the worker cache. Default: ``$GITFREE_CACHE_DIR``, else the user's cache dir.
        endpoint_url, access_key_id, secret_access_key, session_token, region, profile: S3 access;
            anything not given comes from ``GITFREE_*``, then the standard AWS chain.
        jobs: parallel transfers.
        settings: a complete :class:`StoreSettings`; the other arguments override it.
        progress: a factory of fsspec callbacks to report progress of long phases.

    Example:
        >>> store = Store("s3://ml-data/versions")                     # doctest: +SKIP
        >>> v = store.commit("images", "/tmp/images", message="nightly")  # doctest: +SKIP
        >>> store.pull(f"images@{v.number}", "/work/images")            # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | SecretStr | None = None,
        session_token: str | SecretStr | None = None,
        region: str | None = None,
        profile: str | None = None,
        jobs: int | None = None,
        settings: StoreSettings | None = None,
        progress: ProgressFactory | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            key: value
            for key, value in {
                "store": os.fspath(url) if url is not None else None,
                "cache_dir": cache_dir,
                "endpoint_url": endpoint_url,
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
                "session_token": session_token,
                "region": region,
                "profile": profile,
                "jobs": jobs,
            }.items()
            if value is not None
        }
        try:
            if settings is None:
                settings = StoreSettings(**overrides)
            elif overrides:
                settings = StoreSettings.model_validate({**settings.model_dump(exclude_none=True), **overrides})
        except ValidationError as exc:
            raise InputError(f"invalid store settings: {_first_error(exc)}") from None
        self.settings = settings
        self.backend: Backend = open_backend(settings)
        self.url = self.backend.url
        self.cache_dir = settings.prepared_cache_dir()  # ConfigError, naming the setting, if unusable
        self._progress = progress

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # ------------------------------------------------------------------ reading records

    def _read(self, key: str, model: type[M]) -> M:
        raw, _ = self.backend.get(key)
        return self._parse(key, raw, model)

    def _parse(self, key: str, raw: bytes, model: type[M]) -> M:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise IntegrityError(f"the record {key} in {self.url} is not valid JSON (truncated or corrupted)") from None
        fmt = data.get("format") if isinstance(data, dict) else None
        if isinstance(fmt, int) and fmt > 1:
            raise IntegrityError(f"the record {key} in {self.url} has format {fmt}; upgrade gitfree to read it")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise IntegrityError(f"the record {key} in {self.url} is invalid: {_first_error(exc)}") from None

    def _record(self, dataset: str, number: int) -> Version | Dropped:
        """The record at ``versions/<number>.json``: a version, or the tombstone GC left; raise ``KeyMissing``."""
        key = layout.version_key(dataset, number)
        raw, _ = self.backend.get(key)
        return self._version_record(key, raw, dataset, number)

    def _version(self, dataset: str, number: int) -> Version:
        """The version ``dataset@number``; raise ``KeyMissing`` (:class:`Gone` when GC dropped it)."""
        record = self._record(dataset, number)
        if isinstance(record, Dropped):
            raise Gone(record)
        return record

    def _version_record(self, key: str, raw: bytes, dataset: str, number: int) -> Version | Dropped:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            data = None
        model: type[Version] | type[Dropped] = (
            Dropped if isinstance(data, dict) and data.get("dropped") is True else Version
        )
        record = self._parse(key, raw, model)
        if record.dataset != dataset or record.number != number:
            raise IntegrityError(f"the record {key} in {self.url} names {record.ref}, not {dataset}@{number}")
        return record

    def _numbers(self, dataset: str) -> list[int]:
        """Every number with a record (versions and tombstones of dropped ones), ascending."""
        numbers = []
        for key in self.backend.list(layout.versions_prefix(dataset)):
            parsed = layout.parse_version_key(key)
            if parsed and parsed[0] == dataset:
                numbers.append(parsed[1])
        return sorted(numbers)

    def _records(
        self, dataset: str, numbers: Sequence[int], first: int = 64
    ) -> Iterator[tuple[int, Version | Dropped | None]]:
        """The records of ``numbers`` in that order, read in parallel batches (the first of ``first``, then
        doubling to at least 64); ``None`` for one that cannot be read (reported as a warning and skipped: one bad
        record never blocks the rest)."""
        start, batch = 0, max(1, first)
        engine = self._transfer() if numbers else None
        while engine is not None and start < len(numbers):
            keys = {n: layout.version_key(dataset, n) for n in numbers[start : start + batch]}
            start, batch = start + batch, max(batch, min(64, batch * 2))
            raw = engine.read_many(list(keys.values()))
            for number, key in keys.items():
                data = raw.get(key)
                if data is None:  # removed since the listing
                    continue
                try:
                    yield number, self._version_record(key, data, dataset, number)
                except IntegrityError as exc:
                    logger.warning("skipped %s@%d: %s", dataset, number, exc)
                    yield number, None

    def _head(self, dataset: str) -> Version | None:
        """The newest readable version: ``latest.json`` is a hint; probe forward past it.

        Tombstones and records that cannot be read are stepped over, never taken for the head.
        """
        head: Version | None = None
        try:
            latest = self._read(layout.latest_key(dataset), Latest)
            if latest.version.dataset == dataset and latest.version.number == latest.number:
                # The hint names a number; the record says what that number is. A hint that disagrees
                # with it (forged, or written by a buggy client) is not believed.
                pointed = self._record(dataset, latest.number)
                if isinstance(pointed, Version) and pointed == latest.version:
                    head = pointed
                else:
                    logger.warning(
                        "%s does not match the record of %s; ignored", layout.latest_key(dataset), pointed.ref
                    )
        except (KeyMissing, IntegrityError):
            pass
        if head is None:
            numbers = self._numbers(dataset)
            for _, record in self._records(dataset, numbers[::-1], first=2):
                if isinstance(record, Version):
                    head = record
                    break
            if head is None:
                return None
        number = head.number + 1
        while True:
            try:
                record = self._record(dataset, number)
            except KeyMissing:
                return head
            except IntegrityError as exc:
                logger.warning("skipped %s@%d: %s", dataset, number, exc)
            else:
                if isinstance(record, Version):
                    head = record
            number += 1

    def _live(self, dataset: str) -> list[int]:
        """The numbers of the versions that exist (not dropped, readable), ascending. Reads every record."""
        return sorted(n for n, r in self._records(dataset, self._numbers(dataset)) if isinstance(r, Version))

    def _not_found_dataset(self, dataset: str) -> NotFoundError:
        names = self.datasets()
        if not names:
            return NotFoundError(f"dataset {dataset!r} does not exist: the store {self.url} has no datasets yet")
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return NotFoundError(f"dataset {dataset!r} does not exist in {self.url}; it has: {shown}")

    def _not_found_version(self, dataset: str, what: str) -> NotFoundError:
        live = self._live(dataset)
        if not live:
            return self._not_found_dataset(dataset)
        return NotFoundError(f"{dataset!r} has no {what}; it has {_span(live)}")

    def _gone(self, record: Dropped) -> NotFoundError:
        # Cheap on purpose (the head, not every record): "is my training input still there?" is asked in loops.
        head = self._head(record.dataset)
        newest = f"; the newest version is {head.ref}" if head is not None else ""
        by = f" (on {record.dropped_by.host})" if record.dropped_by.host else ""
        return NotFoundError(
            f"{record.ref} was dropped by garbage collection on {record.dropped_at:%Y-%m-%d %H:%M} UTC{by}; its data "
            f"is no longer kept{newest} (`gitfree log {record.dataset}` lists the versions that exist)"
        )

    def show(self, ref: str | Ref | Version) -> Version:
        """The version a ref names: ``images``, ``images@3``, ``images@prod``, ``images@latest~1``.

        A :class:`Version` is returned as it is (so every method that takes a ref takes one too).
        ``latest~K`` counts the versions that exist: those garbage collection dropped are skipped.

        Raises:
            NotFoundError: the dataset, version or tag does not exist, or the version was dropped by
                garbage collection (the message says when, and what exists).
        """
        if isinstance(ref, Version):
            return ref
        parsed = parse_ref(ref)
        dataset = parsed.dataset
        if parsed.tag is not None:
            try:
                tag = self._read(layout.tag_key(dataset, parsed.tag), Tag)
            except KeyMissing:
                tags = sorted(t.tag for t in self.tags(dataset)) if self._numbers(dataset) else None
                if tags is None:
                    raise self._not_found_dataset(dataset) from None
                have = f"its tags are: {', '.join(tags)}" if tags else "it has no tags"
                raise NotFoundError(f"{dataset!r} has no tag {parsed.tag!r}; {have}") from None
            number = tag.number
        elif parsed.number is not None:
            number = parsed.number
        else:
            head = self._head(dataset)
            if head is None:
                raise self._not_found_dataset(dataset)
            if not parsed.back:
                return head
            return self._back(head, parsed)
        try:
            return self._version(dataset, number)
        except Gone as gone:
            raise self._gone(gone.record) from None
        except KeyMissing:
            raise self._not_found_version(dataset, f"version {number}") from None

    resolve = show

    def _back(self, head: Version, parsed: Ref) -> Version:
        """``latest~K``: the K-th existing version before the head."""
        back = parsed.back or 0
        older = [n for n in self._numbers(head.dataset) if n < head.number][::-1]
        live = [head.number]
        for number, record in self._records(head.dataset, older, first=back + 1):
            if isinstance(record, Version):
                live.append(number)
                if len(live) == back + 1:
                    return record
        raise NotFoundError(f"{parsed} is before the first version: {head.dataset!r} has {_span(sorted(live))}")

    def log(self, dataset: str, limit: int | None = None) -> list[Version]:
        """The versions of a dataset, newest first (at most ``limit``).

        Versions garbage collection dropped are not listed; a record that cannot be read is skipped
        with a warning (``gitfree fsck`` names it).
        """
        validate_dataset_name(dataset)
        numbers = sorted(self._numbers(dataset), reverse=True)
        if not numbers:
            raise self._not_found_dataset(dataset)
        versions: list[Version] = []
        for _, record in self._records(dataset, numbers, first=len(numbers) if limit is None else limit + 1):
            if isinstance(record, Version):
                versions.append(record)
                if limit is not None and len(versions) >= limit:
                    break
        return versions

    def datasets(self) -> list[str]:
        """The names of every dataset in the store, sorted."""
        names = set()
        for key in self.backend.list(layout.DATASETS):
            parsed = layout.parse_version_key(key)
            if parsed:
                names.add(parsed[0])
        return sorted(names)

    def tags(self, dataset: str) -> list[Tag]:
        """The tags of a dataset, sorted by name."""
        validate_dataset_name(dataset)
        keys = [k for k in self.backend.list(layout.tags_prefix(dataset)) if layout.parse_tag_key(k)]
        if not keys and not self._numbers(dataset):  # a misspelt name is not "no tags"
            raise self._not_found_dataset(dataset)

        def read(key: str) -> Tag | None:
            try:
                return self._read(key, Tag)
            except KeyMissing:  # removed since the listing
                return None
            except IntegrityError as exc:  # one bad tag never hides the others
                logger.warning("skipped %s", exc)
                return None

        with ThreadPoolExecutor(max_workers=_READ_JOBS) as pool:
            tags = [t for t in pool.map(read, keys) if t is not None]
        return sorted(tags, key=lambda t: t.tag)

    # ------------------------------------------------------------------ files of a version

    def _callback(self, description: str, unit: str = "file") -> Callback:
        return self._progress(description, unit) if self._progress else DEFAULT_CALLBACK

    def _cached(self, md5: str) -> Path:
        return self.cache_dir / layout.object_key(md5)

    def _listing(self, md5: str) -> list[dict[str, Any]]:
        """The ``.dir`` listing of a directory version, from the worker cache or the store; hash-checked."""
        path = self._cached(md5)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            try:
                raw, _ = self.backend.get(layout.object_key(md5))
            except KeyMissing:
                raise IntegrityError(
                    f"the listing {layout.object_key(md5)} of a version is missing from {self.url}; run `gitfree fsck`"
                ) from None
            if hashlib.md5(raw, usedforsecurity=False).hexdigest() == md5.removesuffix(".dir"):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
                tmp.write_bytes(raw)
                os.replace(tmp, path)
        if hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5.removesuffix(".dir"):
            with contextlib.suppress(OSError):
                path.unlink()
            raise IntegrityError(f"the listing {layout.object_key(md5)} does not match its hash; it was not used")
        try:
            listing = json.loads(raw)
            if not isinstance(listing, list) or not all(isinstance(e, dict) for e in listing):
                raise ValueError
        except ValueError:
            raise IntegrityError(f"the listing {layout.object_key(md5)} is not a DVC directory listing") from None
        return listing

    def files(self, ref: str | Ref | Version, *, sizes: bool = False) -> list[FileEntry]:
        """The files of a version: path and md5, and with ``sizes=True`` each file's size.

        Sizes come from the worker cache where it holds the object, else from the store (one
        request per object), so ask for them only when you need them.
        """
        version = self.show(ref)
        out = version.pointer.out
        if not out.is_dir:
            return [FileEntry(path=out.path, md5=out.md5, size=out.size)]
        entries = []
        for item in self._listing(out.md5):
            md5 = item.get("md5")
            if not isinstance(md5, str) or len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
                raise IntegrityError(f"the listing of {version.ref} has an entry without a valid md5: {str(item)[:80]}")
            size = item.get("size")
            entries.append(
                FileEntry(
                    path=validate_path(item.get("relpath")), md5=md5, size=size if isinstance(size, int) else None
                )
            )
        validate_entries(entries)
        if sizes:
            known = self._sizes(e.md5 for e in entries if e.size is None)
            entries = [e if e.size is not None else e.model_copy(update={"size": known.get(e.md5)}) for e in entries]
        return entries

    def _sizes(self, md5s: Iterable[str]) -> dict[str, int]:
        """Object sizes, from the worker cache where present, else from the store."""

        def size(md5: str) -> int:
            with contextlib.suppress(OSError):
                return self._cached(md5).stat().st_size
            try:
                return self.backend.size(layout.object_key(md5))
            except KeyMissing:
                return -1

        unique = sorted(set(md5s))
        with ThreadPoolExecutor(max_workers=_READ_JOBS) as pool:
            return {md5: s for md5, s in zip(unique, pool.map(size, unique), strict=True) if s >= 0}

    def diff(self, old: str | Ref, new: str | Ref) -> Diff:
        """Paths added, removed and modified from version ``old`` to version ``new``, with sizes."""
        a, b = self.show(old), self.show(new)
        fa = {e.path: e.md5 for e in self.files(a)}
        fb = {e.path: e.md5 for e in self.files(b)}
        changed = {p for p in fa.keys() | fb.keys() if fa.get(p) != fb.get(p)}
        sizes = self._sizes([fa[p] for p in changed if p in fa] + [fb[p] for p in changed if p in fb])
        entries = []
        for path in changed:
            om, nm = fa.get(path), fb.get(path)
            status = "added" if om is None else "removed" if nm is None else "modified"
            entries.append(
                DiffEntry(
                    path=path,
                    status=status,
                    old_md5=om,
                    new_md5=nm,
                    old_size=sizes.get(om or ""),
                    new_size=sizes.get(nm or ""),
                )
            )
        return Diff(old=a.ref, new=b.ref, entries=entries)

    # ------------------------------------------------------------------ pull and export

    def pull(
        self,
        ref: str | Ref | Version,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        paths: Sequence[str] | None = None,
    ) -> Path:
        """Materialise a version at ``dest`` (any path) and return it.

        Only objects missing from the worker cache are downloaded; every file is
        hash-checked as it is written; a destination that already holds the version
        is left alone. A destination holding, unmodified, an earlier version gitfree pulled
        there is updated in place without ``overwrite`` (only the files that differ are
        written, as ``dvc checkout`` does). ``paths`` restricts the pull to some files or
        folders of the version. What a killed pull left beside ``dest`` is cleared first.

        Raises:
            InputError: ``dest`` holds other data (or local changes to what gitfree pulled there)
                and ``overwrite`` is false; or, even with ``overwrite``, ``dest`` is, contains or lies
                inside the store or the worker cache, is the current directory or one of its parents,
                the home directory or ``/``, lies below a file, or is a device or a mount point.
            UnsafePathError: the version names a path outside ``dest`` (nothing is written).
            IntegrityError: an object is missing from the store or does not match its hash.
        """
        from .checkout import destination, guard_destination, pull_into
        from .staging import HashState

        version = self.show(ref)
        entries = self.files(version)
        if paths is not None:
            entries = select(entries, paths)
        single = not version.is_dir
        target = destination(dest, version.pointer.out.path if single else None)
        guard_destination(
            target,
            store_root=self.backend.root if isinstance(self.backend, FileBackend) else None,
            cache_dir=self.cache_dir,
            hint=version.dataset.rpartition("/")[2],
        )
        state = HashState(self.cache_dir)
        try:
            wrote = pull_into(
                entries,
                target,
                ref=version.ref,
                cache_dir=self.cache_dir,
                single=single,
                overwrite=overwrite,
                state=state,
                fetch=lambda md5s: self._fetch(version, md5s, state),
                progress=lambda: self._callback(f"Checking out {version.ref}"),
            )
        finally:
            state.close()
        if wrote:
            logger.info("pulled %s to %s", version.ref, target)
        else:
            logger.info("%s already holds %s", target, version.ref)
        return target

    def _fetch(self, version: Version, md5s: Iterable[str], state: HashState) -> None:
        """Download the objects of ``version`` among ``md5s`` that the worker cache lacks, in parallel.

        They are hashed as they stream in and remembered in ``state`` as verified.

        Raises:
            IntegrityError: an object is missing from the store or does not match its hash.
        """
        root = str(self.cache_dir)
        missing = sorted({md5 for md5 in md5s if not os.path.isfile(f"{root}/{layout.object_key(md5)}")})
        if not missing:
            return
        failed = self._transfer().download(missing, self._callback(f"Downloading {version.ref}"))
        state.remember((str(self._cached(md5)), md5) for md5 in missing if md5 not in failed)
        if len(failed) == 1:
            raise IntegrityError(
                f"the object {layout.object_key(next(iter(failed)))} of {version.ref} is missing from {self.url} "
                "or does not match its hash; run `gitfree fsck`"
            )
        if failed:
            raise IntegrityError(
                f"{len(failed)} objects of {version.ref} are missing from {self.url} or do not match their hash "
                f"(e.g. {layout.object_key(min(failed))}); run `gitfree fsck`"
            )

    def open(self, ref: str | Ref | Version, path: str = "") -> BinaryIO:
        """Open one file of a version for reading, fetching only that file's object.

        ``path`` is the file's path inside the version (for a single-file version, its name or
        nothing). The object comes from the worker cache when it holds it intact, else from the
        store, hashed as it streams; what is returned is a read-only binary file.

        Raises:
            NotFoundError: the version has no such file (the message says what it has there).
            InputError: ``path`` is a folder of the version.
            IntegrityError: the object is missing from the store or does not match its hash.
        """
        from .localfs import md5_file as _md5_file
        from .staging import HashState

        version = self.show(ref)
        entries = self.files(version)
        wanted = path.strip("/")
        entry: FileEntry | None
        if not version.is_dir and wanted in ("", version.pointer.out.path):
            entry = entries[0]
        else:
            entry = next((e for e in entries if e.path == wanted), None)
        if entry is None:
            inside = sorted(
                {e.path[len(wanted) + 1 :].split("/")[0] for e in entries if e.path.startswith(f"{wanted}/")}
            )
            if inside or not wanted:
                raise InputError(
                    f"{wanted or '/'} is a folder of {version.ref}: open one of its files "
                    f"({', '.join(inside[:5])}{' ...' if len(inside) > 5 else ''}), or pull it with paths="
                )
            raise NotFoundError(f"{version.ref} has no file {wanted!r}; list its files with `gitfree ls {version.ref}`")
        cached = self._cached(entry.md5)
        state = HashState(self.cache_dir)
        try:
            if cached.is_file() and state.known([str(cached)]).get(str(cached)) != entry.md5:
                if _md5_file(cached) == entry.md5:
                    state.remember([(str(cached), entry.md5)])
                else:
                    cached.unlink()  # corrupted in the cache: fetch a good copy
            self._fetch(version, [entry.md5], state)
        finally:
            state.close()
        return open(cached, "rb")

    def export_dvc(self, ref: str | Ref | Version, path: str | os.PathLike[str]) -> Path:
        """Write the ``.dvc`` file of a version, for a plain git+DVC project whose remote is this store.

        ``path`` is the ``.dvc`` file (``repo/images.dvc``, whose data path becomes ``images``)
        or a directory (the file is named after the version's data). Then, in that project:
        ``dvc remote add -d store <store URL>`` and ``dvc pull``.
        """
        version = self.show(ref)
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / f"{version.pointer.out.path}.dvc"
        if target.suffix != ".dvc" or target.name == ".dvc":
            raise InputError(f"export to a file named NAME.dvc (got {target.name!r}); DVC tracks NAME next to it")
        out = version.pointer.out
        lines = [
            f"# gitfree: {version.ref} from {self.url} (version id {version.id})",
            "outs:",
            f"- md5: {out.md5}",
            f"  size: {out.size}",
        ]
        if out.nfiles is not None:
            lines.append(f"  nfiles: {out.nfiles}")
        lines += ["  hash: md5", f"  path: {json.dumps(target.name[: -len('.dvc')])}", ""]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines), encoding="utf-8")
        return target

    # ------------------------------------------------------------------ writing

    def _ensure_writable(self) -> None:
        """Once per process and store: prove conditional writes work and the format is ours."""
        key = (self.url, getattr(self.backend, "endpoint", None))
        with _probed_lock:
            if key in _probed:
                return
        try:
            marker: StoreMarker | None = self._read(layout.MARKER, StoreMarker)
        except KeyMissing:
            marker = None
            self._refuse_other_data()
        if marker is not None and marker.format != 1:
            raise IntegrityError(
                f"{self.url} is a gitfree store of format {marker.format}; upgrade gitfree to write to it"
            )
        self.backend.probe_conditional_writes()
        if marker is None:
            from gitfree import __version__

            new = StoreMarker(format=1, created_at=utcnow(), created_by=f"gitfree {__version__}")
            with contextlib.suppress(KeyExists):
                self.backend.create(layout.MARKER, new.model_dump_json(indent=2).encode())
        with _probed_lock:
            _probed.add(key)

    def _refuse_own_files(self, source: Path) -> None:
        """A commit of the store, the worker cache, or a folder holding or inside either would snapshot
        what gitfree is writing into at that moment: refused, as a pull onto them is (the same
        comparison: resolved paths, and device and inode)."""
        places = [("the worker cache", self.cache_dir)]
        if isinstance(self.backend, FileBackend):
            places.append(("the store", self.backend.root))
        for what, place in places:
            if path_relation(source, place, inside_too=True) is not None:
                raise InputError(
                    f"cannot commit {source}: it is, holds or lies inside {what} ({place.resolve()}); gitfree writes "
                    "there while it commits. Commit your data from a folder of its own"
                )

    def _refuse_other_data(self) -> None:
        """A place with no ``gitfree.json`` becomes a store only if it is empty or holds nothing but
        gitfree's and DVC's layout (an existing DVC remote may become a store): never a data folder."""
        ours = (layout.MARKER, layout.DATASETS, layout.OBJECTS, layout.LEASES, layout.UPLOADS, layout.GC, layout.PROBES)
        for seen, key in enumerate(self.backend.list("")):
            if not key.startswith(ours):
                raise ConfigError(
                    f"{self.url} holds other data (e.g. {key!r}) and is not a gitfree store (it has no "
                    f"{layout.MARKER}); gitfree writes only to an empty directory or prefix, or to an existing store. "
                    "Check the --store / GITFREE_STORE setting"
                )
            if seen > 10_000:
                return

    def _skew(self) -> timedelta:
        return timedelta(seconds=self.settings.clock_skew)

    def _live_gc_lock(self) -> Lease | None:
        """The GC lock, if a garbage collection holds it and is alive."""
        found = leases.read(self.backend, layout.GC_LOCK)
        if found is None or leases.is_dead(found[0], self._skew()):
            return None
        return found[0]

    def _await_gc(self, deadline: float, what: str) -> bool:
        """Wait while garbage collection runs; true if it did (so the caller re-checks what it relied on)."""
        waited = False
        while (lock := self._live_gc_lock()) is not None:
            if time.monotonic() > deadline:
                raise ConflictError(
                    f"{what} waited {self.settings.gc_wait:.0f}s for garbage collection on {self.url} to finish "
                    f"(the run now holding it started {lock.created_at:%Y-%m-%d %H:%M:%S} UTC on {lock.host}, pid "
                    f"{lock.pid}). Retry when it has finished, or raise GITFREE_GC_WAIT"
                )
            if not waited:
                logger.info("garbage collection is running on %s (on %s); %s waits for it", self.url, lock.host, what)
            waited = True
            # Look often (a GET of a small key): a commit must not miss the gap between two GC runs.
            time.sleep(random.uniform(0.5, 1.5) * min(0.25, max(0.05, self.settings.gc_wait / 20)))  # noqa: S311
        return waited

    @contextlib.contextmanager
    def _lease(self, dataset: str, pointer: str) -> Iterator[leases.Holder]:
        """Steps 1 and 8: a lease naming what the commit will reference, renewed while it runs.

        The lease is written *before* looking for the GC lock (DESIGN.md, "Garbage
        collection"): either a GC that starts later sees the lease and keeps ``pointer``,
        or we see its lock, withdraw the lease (so GC does not wait for us) and wait.
        """
        ttl = timedelta(seconds=self.settings.lease_ttl)
        deadline = time.monotonic() + self.settings.gc_wait
        while True:
            holder = leases.Holder.new(self.backend, ttl, dataset=dataset, pointer=pointer)
            holder.create()
            if self._live_gc_lock() is None:
                break
            holder.release()
            self._await_gc(deadline, f"a commit to {dataset!r}")
        try:
            yield holder
        finally:
            holder.release()

    def commit(
        self,
        dataset: str,
        path: str | os.PathLike[str],
        *,
        message: str = "",
        metadata: Mapping[str, JsonValue] | None = None,
        metrics: Mapping[str, float] | None = None,
        inputs: Iterable[str | Ref | Version | InputRef] | None = None,
        author: Author | None = None,
        force: bool = False,
        commit_id: uuid.UUID | None = None,
    ) -> Version:
        """Commit the file or directory at ``path`` as the next version of ``dataset``.

        If the data and the inputs equal the newest version's, that version is returned and
        nothing is written (``force=True`` makes a new version anyway); the same data made from
        other inputs is a new version (same objects, nothing uploaded). Safe to call from any
        number of workers at once: each gets its own version number, none is lost, and no number
        is ever given twice.

        Args:
            dataset: name such as ``images`` or ``raw/sales``.
            path: the file or directory to commit.
            message: a human description.
            metadata: free JSON stored with the version.
            metrics: name → number, e.g. ``{"rows": 1200}``.
            inputs: versions this one was made from (refs, versions or ``InputRef``).
            author: who made it; default: this user and host.
            force: create a version even when the data is unchanged.
            commit_id: the id of this commit attempt (default: a new UUID). A retry that passes the
                same id recognises a version its earlier attempt created (and says ``created``).

        Returns:
            The version that holds the data: ``version.created`` is true when this call (or an earlier
            attempt with the same ``commit_id``) created it, false when the newest version already held
            the same data from the same inputs, so nothing was written (its message and metadata are not
            those of this call).

        Raises:
            InputError: bad name or a path that is missing or empty.
            ConflictError: other writers kept winning, or garbage collection holds the store.
        """
        from .staging import HashState, stage

        validate_dataset_name(dataset)
        source = Path(path).expanduser().absolute()
        _check_source(source)
        self._refuse_own_files(source)
        lineage = [self._input_ref(item) for item in inputs or ()]
        commit_id = commit_id or uuid.uuid4()
        fields: dict[str, Any] = {
            "dataset": dataset,
            "id": commit_id,
            "message": message,
            "author": author or Author.current(),
            "metadata": dict(metadata or {}),
            "metrics": dict(metrics or {}),
            "inputs": lineage,
        }
        _check_fields(fields)  # before anything is hashed or uploaded
        state = HashState(self.cache_dir)
        try:
            staged = stage(source, source.name, self.cache_dir, state, self._callback(f"Hashing {source.name}"))
        finally:
            state.close()
        head = self._head(dataset)
        if head is not None and not force and _same_version(head, staged.out.md5, lineage):
            logger.info("%s is unchanged since %s; no new version", source, head.ref)
            # A retry with the id of an attempt that did create it (its answer lost) made it too.
            return head.model_copy(update={"created": head.id == commit_id})
        self._ensure_writable()
        fields.update(
            pointer={"outs": [staged.out]},
            size=staged.out.size,
            nfiles=staged.out.nfiles if staged.out.nfiles is not None else 1,
        )
        with self._lease(dataset, staged.out.md5) as lease:
            journal = self._push(staged.out, staged.oids, head, lease)
            if not lease.valid(margin=lease.ttl / 3):
                raise ConflictError(
                    f"the lease of this commit to {dataset!r} lapsed while it uploaded (its heartbeats failed), so a "
                    "garbage collection may have judged it dead; nothing was committed. Retry: what is already "
                    "uploaded is not sent again"
                )
            version = self._create_version(head.number + 1 if head else 1, fields, force)
            if journal is not None:  # the record names the objects now; a failure leaves it to gc
                with contextlib.suppress(GitfreeError):
                    self.backend.delete(journal)
        self._advance_latest(version)
        version = version.model_copy(update={"created": version.id == commit_id})
        logger.info("committed %s (%d files, %d bytes)", version.ref, version.nfiles, version.size)
        return version

    def _transfer(self) -> Transfer:
        return Transfer(self.backend.object_store(), self.cache_dir, self.settings.jobs or _TRANSFER_JOBS, self.url)

    def _push(self, out: Output, oids: frozenset[str], head: Version | None, lease: leases.Holder) -> str | None:
        """Steps 2 and 3: make every object of the new version durable in the store.

        Objects of the newest version are not sent again: garbage collection never removes what a
        kept version references, and the head's record still being there under our lease proves it
        was kept (``fsck`` proves the objects). Before anything is uploaded, the list of what will be
        is written to an upload journal (``uploads/<lease id>.json``): that is how a later garbage
        collection tells this commit's objects, should it crash, from another tool's. Small new
        objects are PUT straight away (a PUT of a content-addressed object is idempotent and costs
        what a HEAD would); large ones only after a HEAD says they are missing. The ``.dir`` listing
        goes last, so a listing in the store means its files are there. Returns the journal's key.
        """
        known: set[str] = set()
        # Under the lease: a GC that started before it is over (we waited for it), one that starts
        # later keeps what our lease names. If the head's record is still that version, no GC
        # dropped it (GC replaces records by tombstones before it deletes objects), so its objects
        # are there too.
        if head is not None:
            try:
                if self._version(head.dataset, head.number).id != head.id:
                    head = None
            except (KeyMissing, IntegrityError):
                head = None
        if head is not None:
            known.add(head.md5)
            if head.is_dir:
                with contextlib.suppress(GitfreeError):  # an unreadable head listing: trust nothing
                    known |= {entry.md5 for entry in self.files(head)}
        files = sorted(oids - known - ({out.md5} if out.is_dir else set()))
        engine = self._transfer()
        large = [oid for oid in files if self._cached(oid).stat().st_size >= _HEAD_FIRST]
        present = engine.present(large) if large else set()
        sending = [oid for oid in files if oid not in present]
        listing = [out.md5] if out.is_dir and out.md5 not in known else []
        if not sending and not listing:
            return None
        journal = layout.upload_key(str(lease.lease.id))
        record = Uploads(
            lease=lease.lease.id, dataset=lease.lease.dataset or "", created_at=utcnow(), objects=[*sending, *listing]
        )
        self.backend.put(journal, record.model_dump_json().encode())
        engine.upload(sending, self._callback(f"Uploading {out.path}"))
        if listing:
            engine.upload(listing)
        return journal

    def _input_ref(self, item: str | Ref | Version | InputRef) -> InputRef:
        if isinstance(item, InputRef):
            return item
        version = self.show(item)
        return InputRef(dataset=version.dataset, number=version.number)

    def _create_version(self, number: int, fields: dict[str, Any], force: bool) -> Version:
        """Step 6 of the protocol: create-only write of the next number; on 412 move on, on doubt re-read."""
        dataset = fields["dataset"]
        try:
            template = Version.model_validate({**fields, "number": 1, "created_at": utcnow()})
        except ValidationError as exc:
            raise InputError(f"cannot commit to {dataset!r}: {_first_error(exc)}") from None
        for attempt in range(self.settings.commit_attempts):
            record = template.model_copy(
                update={"number": number, "parent": number - 1 or None, "created_at": utcnow()}
            )
            key = layout.version_key(dataset, number)
            try:
                self.backend.create(key, record.model_dump_json(indent=2).encode())
                return record
            except (KeyExists, OutcomeUnknown):
                pass
            try:
                existing = self._record(dataset, number)
            except KeyMissing:  # the outcome was unknown and nothing is there: try this number again
                time.sleep(random.uniform(0, min(0.05 * 2**attempt, 2.0)))  # noqa: S311 - jitter, not crypto
                continue
            except IntegrityError as exc:  # someone's unreadable record holds the number: take the next
                logger.warning("skipped %s@%d: %s", dataset, number, exc)
                existing = None
            if isinstance(existing, Dropped):  # a number GC dropped stays taken (it is never reused)
                if existing.id == record.id:
                    raise ConflictError(
                        f"this commit created {existing.ref}, and a garbage collection dropped it at once (it was "
                        "neither the newest version nor kept by the policy); commit again"
                    )
            elif existing is not None:
                if existing.id == record.id:  # our write landed; only its response was lost
                    return existing
                if not force and _same_version(existing, record.md5, record.inputs):  # another writer made it
                    return existing
            number += 1
            time.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.2)))  # noqa: S311
        raise ConflictError(
            f"could not commit to {dataset!r} after {self.settings.commit_attempts} attempts: other writers kept "
            "taking the next version number; retry (the uploaded data is kept and will not be sent again)"
        )

    def _advance_latest(self, version: Version) -> bool:
        """Step 7: move ``latest.json`` forward (never back) with If-Match. It is only a hint; false if it
        could not be moved."""
        key = layout.latest_key(version.dataset)
        data = Latest(number=version.number, version=version).model_dump_json().encode()
        for _ in range(20):
            try:
                raw, etag = self.backend.get(key)
            except KeyMissing:
                with contextlib.suppress(KeyExists, OutcomeUnknown):
                    self.backend.create(key, data)
                    return True
                continue
            with contextlib.suppress(IntegrityError):
                if self._parse(key, raw, Latest).number >= version.number:
                    return True
            with contextlib.suppress(PreconditionFailed, OutcomeUnknown):
                self.backend.replace(key, data, etag)
                return True
        logger.warning("could not advance %s to %s; readers find the version by probing", key, version.ref)
        return False

    def tag(self, ref: str | Ref | Version, tag: str, *, move: bool = False, expect: int | None = None) -> Tag:
        """Point ``tag`` at a version. Tags are create-only; ``move=True`` moves an existing one.

        Args:
            expect: with ``move``, the version number the caller believes the tag is at; the move
                fails if it is elsewhere (compare-and-swap, as ``git update-ref NEW OLD``).

        Raises:
            ConflictError: the tag exists (and ``move`` is false), it is not at ``expect``, or it
                moved while we moved it.
        """
        validate_tag_name(tag)
        version = self.show(ref)
        self._ensure_writable()
        record = Tag(
            dataset=version.dataset, tag=tag, number=version.number, created_at=utcnow(), author=Author.current()
        )
        key = layout.tag_key(version.dataset, tag)
        data = record.model_dump_json(indent=2).encode()
        etag: str | None = None
        if expect is None:
            with contextlib.suppress(KeyExists, OutcomeUnknown):
                etag = self.backend.create(key, data)
        attempt = 0
        while etag is None:
            attempt += 1
            if attempt > self.settings.commit_attempts:
                raise ConflictError(
                    f"could not move tag {record.ref} after {self.settings.commit_attempts} attempts: others kept "
                    "moving it at the same time; retry"
                )
            try:
                raw, current_etag = self.backend.get(key)
            except KeyMissing:
                if expect is not None:
                    raise _permanent(
                        ConflictError(f"tag {record.ref} does not exist, so it is not at version {expect}")
                    ) from None
                with contextlib.suppress(KeyExists, OutcomeUnknown):  # removed meanwhile: create it again
                    etag = self.backend.create(key, data)
                continue
            existing = self._parse(key, raw, Tag)
            if existing.number == version.number:
                return existing
            if not move and expect is None:
                raise _permanent(
                    ConflictError(
                        f"tag {existing.ref} already points at version {existing.number}; pass move=True (--move) "
                        f"to move it to {version.number}"
                    )
                )
            if expect is not None and existing.number != expect:
                raise _permanent(
                    ConflictError(
                        f"tag {existing.ref} is at version {existing.number}, not {expect} as expected; look again "
                        "and retry"
                    )
                )
            try:
                etag = self.backend.replace(key, data, current_etag)
            except (PreconditionFailed, OutcomeUnknown):
                if expect is None:  # an unconditional move: someone else moved it; swap again
                    time.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.2)))  # noqa: S311 - jitter
                    continue
                current = self._read(key, Tag)
                if current.number == version.number:
                    return current
                raise _permanent(
                    ConflictError(
                        f"tag {existing.ref} was moved by someone else (now at version {current.number}), not at "
                        f"{expect} any more; look again and retry"
                    )
                ) from None
        # A tag is a GC root written outside a lease: written first, then the GC lock checked (as a
        # lease is), then the version read again. A GC that took its lock after our write reads our
        # tag and keeps the version; one that took it before either still holds it (we wait) or
        # has finished, and then the record says whether it dropped the version.
        self._await_gc(time.monotonic() + self.settings.gc_wait, f"tagging {record.ref}")
        try:
            self._version(version.dataset, version.number)
        except KeyMissing:
            with contextlib.suppress(KeyMissing):
                if self.backend.get(key)[1] == etag:
                    self.backend.delete(key)
            raise NotFoundError(
                f"{version.ref} was dropped by a garbage collection that ran while it was being tagged; "
                f"the tag {record.ref} was not kept"
            ) from None
        return record

    # ------------------------------------------------------------------ maintenance

    def gc(
        self,
        *,
        keep_last: int | None = None,
        keep_within: timedelta | None = None,
        grace: timedelta | None = None,
        dry_run: bool = False,
        delete_foreign: bool = False,
    ) -> GcReport:
        """Drop the versions the retention policy does not keep, then delete gitfree's objects nothing kept references.

        In every dataset the newest version and every tagged version are kept, and also the
        last ``keep_last`` and those younger than ``keep_within``; with neither, every version
        is kept and only objects no version references (a crashed commit's uploads) go. A dropped
        version's record is replaced by a tombstone: its number is never reused, and a ref to it
        says when it was dropped. Objects younger than ``grace`` (default: lease TTL + clock skew)
        are never removed. Only objects gitfree wrote are deleted (named by a version, a tombstone or
        a commit's upload journal); others in DVC's layout, such as a DVC project's pushed to the
        same remote, are counted in ``report.foreign_objects`` and deleted only with
        ``delete_foreign=True``. A dataset with a record that cannot be read drops nothing, and
        every object named in that record's bytes is kept (``report.unreadable_records``). Safe
        while commits run: their leases keep what they will reference, and commits that start
        during GC wait for it. A GC that dies part way is simply run again.

        Raises:
            ConflictError: another GC runs, or commits in flight did not finish uploading in time.
            IntegrityError: the listing of a kept version cannot be read; nothing was deleted (run :meth:`fsck`).
        """
        from .gc import collect

        return collect(
            self,
            keep_last=keep_last,
            keep_within=keep_within,
            grace=grace,
            dry_run=dry_run,
            delete_foreign=delete_foreign,
        )

    def fsck(self, *, deep: bool = False, repair: bool = False, datasets: Iterable[str] = ()) -> FsckReport:
        """Check every version (of ``datasets``, default all): records, listings, objects, tags, ``latest.json``.

        Objects are proven present by one listing of the store, and their content by the
        server's ETag where it is the md5 (single-part S3 uploads); ``deep=True`` downloads
        and hashes every object instead. ``repair=True`` re-uploads missing or damaged
        objects the worker cache holds intact, then checks again. ``report.ok`` tells
        whether anything is left broken.
        """
        from .fsck import check

        report = check(self, deep=deep, repair=repair, datasets=datasets)
        if repair and any(p.repaired for p in report.problems):
            again = check(self, deep=deep, repair=True, datasets=datasets)
            fixed = [p for p in report.problems if p.repaired]
            report = again.model_copy(update={"problems": fixed + [p for p in again.problems if p not in fixed]})
        return report


def _check_source(source: Path) -> None:
    """Refuse a source that is missing, special (a FIFO, socket or device) or oddly named, before anything else.

    What is inside a directory (names every reader accepts, regular files only, ``.dvcignore``, no
    empty folder) is checked by :func:`.staging.scan` when the commit stages it, before anything is
    hashed or uploaded.
    """
    from .staging import check_source

    check_source(source)


def _span(numbers: Sequence[int]) -> str:
    """``version 3``, ``versions 1 to 8``, ``versions 1, 7 and 8``, ``versions 1, 4 to 9 and 12``."""
    if not numbers:
        return "no versions"
    runs: list[str] = []
    first = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        runs.append(str(first) if first == prev else f"{first}, {prev}" if prev == first + 1 else f"{first} to {prev}")
        if n is not None:
            first = prev = n
    parts = ", ".join(runs).split(", ")
    if len(parts) == 1:
        text = parts[0]
        return f"version {text}" if " to " not in text else f"versions {text}"
    if len(parts) > 12:
        text = ", ".join(parts[:10]) + f" and {len(parts) - 10} more"
    else:
        text = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return f"{len(numbers)} versions ({text})"


def _permanent(error: ConflictError) -> ConflictError:
    """A conflict that asking again cannot resolve (the tag is elsewhere than the caller said)."""
    error.transient = False
    return error


def _same_version(head: Version, md5: str, inputs: Sequence[InputRef]) -> bool:
    """Would a commit of ``md5`` made from ``inputs`` say nothing ``head`` does not? Lineage is part of
    what a version means: the same data made from other inputs is a new version (same objects)."""
    key = lambda ref: (ref.store or "", ref.dataset, ref.number)  # noqa: E731
    return head.md5 == md5 and sorted(head.inputs, key=key) == sorted(inputs, key=key)


def _check_fields(fields: dict[str, Any]) -> None:
    """Refuse metadata, metrics or inputs no reader could read back, before anything is uploaded."""
    probe = {
        **fields,
        "number": 1,
        "created_at": utcnow(),
        "pointer": {"outs": [{"md5": "0" * 32, "size": 0, "path": "x"}]},
        "size": 0,
        "nfiles": 1,
    }
    try:
        Version.model_validate_json(Version.model_validate(probe).model_dump_json())
    except ValidationError as exc:
        raise InputError(f"cannot commit to {fields['dataset']!r}: {_first_error(exc)}") from None
    except ValueError as exc:  # e.g. metadata that JSON cannot hold
        raise InputError(f"cannot commit to {fields['dataset']!r}: {exc}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "value"
    return f"{where}: {error.get('msg', 'invalid')}"
