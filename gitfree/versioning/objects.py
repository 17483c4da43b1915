"""Content-addressed objects: the worker cache and the store's ``files/md5/``, in DVC 3's layout.

A file is the object named by its md5; a folder's ``.dir`` listing (DVC's JSON list of ``relpath``
and ``md5``) is the object named by the listing's own md5 with ``.dir`` appended (docs/design.md,
"The DVC side"). Objects never change, so what the worker cache holds intact is never fetched again,
and anything read from the store is hash-checked before it is used. :func:`parse_listing` is the one
reader of listings (for pulls, garbage collection and ``fsck`` alike).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from . import layout
from .backends import Backend, KeyMissing, ObjectInfo, PreconditionFailed, S3Backend
from .errors import ConfigError, InputError, IntegrityError
from .localfs import atomic_write, md5_file, owned_name
from .models import FileEntry, Output, ReferenceEntry, References
from .sources import S3Source, Source
from .staging import HashState
from .transfer import Transfer
from .tree import Tree, validate_entries

__all__ = [
    "COPY_MAX",
    "LISTINGS_KEPT",
    "PEEK_LENGTH",
    "PEEK_MAX",
    "REFERENCES_KEPT",
    "TRANSFER_JOBS",
    "ListingError",
    "Objects",
    "ProgressFactory",
    "check_peek",
    "parse_listing",
]

logger = logging.getLogger("gitfree")

ProgressFactory = Callable[[str, str], Callback]
"""``progress(description, unit)`` returns an fsspec callback for one phase (hashing, upload, download, checkout)."""

_SIZE_JOBS = 32
"""Parallel HEADs when sizes are asked for (one small request each)."""
TRANSFER_JOBS = 64
"""Requests in flight for transfers and batched reads, unless the settings say otherwise."""
COPY_MAX = 5 * 1024**3
"""The largest object one ``CopyObject`` copies (5 GiB, S3's limit); a larger one is streamed (it was uploaded in
parts anyway, so its ETag is no md5 and a copy would need the same read to be checked)."""
LISTINGS_KEPT = (4, 400_000)
"""The checked listings an :class:`Objects` keeps in memory: the last 4 used, fewer when together they hold
over 400,000 entries (the newest one is always kept). Parsing a listing of 100,000 files costs about a second."""
REFERENCES_KEPT = (8, 400_000)
"""The reference tables an :class:`Objects` keeps in memory (where the files of versions by reference are): the
last 8 used, fewer when together they hold over 400,000 entries (the newest one is always kept). One dropped is
read again at the next :meth:`.Store.show` of its version."""


class ListingError(IntegrityError):
    """A ``.dir`` listing is missing (``kind="missing_listing"``), does not match its hash
    (``"hash_mismatch"``) or is not a DVC directory listing (``"bad_listing"``)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_listing(oid: str, raw: bytes) -> list[FileEntry]:
    """The entries of the listing ``oid`` (``md5.dir``) whose bytes are ``raw``: hash-checked, every entry
    with a valid md5. Paths are taken as they are (a path that is not text becomes ``""``):
    :func:`.tree.validate_entries` judges them, where files are written or listed."""
    key = layout.object_key(oid)
    if hashlib.md5(raw, usedforsecurity=False).hexdigest() != layout.md5_of(oid):
        raise ListingError(f"the listing {key} does not match its hash; it was not used", "hash_mismatch")
    try:
        items = json.loads(raw)
        if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
            raise ValueError
    except ValueError:
        raise ListingError(f"the listing {key} is not a DVC directory listing", "bad_listing") from None
    entries = []
    for item in items:
        md5, path, size = item.get("md5"), item.get("relpath"), item.get("size")
        if not layout.is_md5(md5):
            raise ListingError(f"the listing {key} has an entry without a valid md5: {str(item)[:80]}", "bad_listing")
        entries.append(
            FileEntry(
                path=path if isinstance(path, str) else "",
                md5=str(md5),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )
    return entries


PEEK_LENGTH = 64 * 1024
"""What :meth:`.Store.peek` reads unless told: 64 KiB."""
PEEK_MAX = 16 * 1024 * 1024
"""The most one :meth:`.Store.peek` reads (16 MiB): more is a read of the file (:meth:`.Store.open`)."""


def check_peek(offset: int, length: int) -> None:
    """Refuse an ``offset`` or ``length`` :meth:`.Store.peek` cannot take, before any request."""
    for name, value in (("offset", offset), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{name} is a whole number of bytes, not {value!r}")
    if not 0 <= length <= PEEK_MAX:
        raise InputError(
            f"length is 0 to {PEEK_MAX} bytes (16 MiB), not {length}: read a whole file with open() "
            "(`gitfree cat`) instead"
        )


class Objects:
    """The objects of one store and one worker cache.

    Args:
        backend: the store's backend (single GETs, HEADs and listings).
        cache_dir: the worker cache (``cache_dir/files/md5/…``, DVC's cache layout).
        jobs: requests in flight for transfers (default 64).
        progress: a factory of fsspec callbacks to report long phases.
    """

    def __init__(
        self,
        backend: Backend,
        cache_dir: Path,
        jobs: int | None = None,
        progress: ProgressFactory | None = None,
        read_timeout: float | None = None,
    ) -> None:
        self.backend = backend
        self.url = backend.url
        self.cache_dir = cache_dir
        self.jobs = jobs or TRANSFER_JOBS
        self._progress = progress
        self.read_timeout = read_timeout
        """How long a batched record read waits for the server (the transfer timeout if ``None``)."""
        self._checked: OrderedDict[str, tuple[FileEntry, ...]] = OrderedDict()
        self._trees: dict[str, Tree] = {}
        """The :class:`.tree.Tree` of kept listings, once one was asked for (:meth:`tree`)."""
        self._checked_lock = threading.Lock()
        self._vouched: dict[str, tuple[int, int, int]] = {}
        """Objects whose cached copy the hash state vouched for: oid -> (inode, size, mtime) then (:meth:`peek`)."""
        self._referenced: OrderedDict[str, tuple[Source, dict[str, ReferenceEntry]]] = OrderedDict()
        """The tables of versions by reference this process was told of (:meth:`refer`), by the table's md5, the
        last used last, at most :data:`REFERENCES_KEPT`: the source and each file's entry by md5."""
        self.relearn: Callable[[str], None] | None = None
        """Tell :meth:`refer` again of the table of the version ``ref`` (set by the :class:`.Store`): a read whose
        files no kept table names calls it once, since other reads may have dropped that table since its ``show``."""

    def callback(self, description: str, unit: str = "file") -> Callback:
        return self._progress(description, unit) if self._progress else DEFAULT_CALLBACK

    def cached(self, oid: str) -> Path:
        """Where the worker cache keeps ``oid`` (whether or not it holds it)."""
        return self.cache_dir / layout.object_key(oid)

    def transfer(self) -> Transfer:
        """The engine that moves objects between the worker cache and the store (obstore, many in flight)."""
        uploader = self.backend.object_uploader()
        return Transfer(self.backend.object_store(), self.cache_dir, self.jobs, self.url, upload_file=uploader)

    def read_many(self, keys: Collection[str]) -> dict[str, bytes | None]:
        """Many small keys read at once (``None`` for one that does not exist)."""
        if not keys:
            return {}
        store = self.backend.object_store(timeout=self.read_timeout)
        return Transfer(store, self.cache_dir, self.jobs, self.url, answer_within=self.read_timeout).read_many(keys)

    # ------------------------------------------------------------------ listings

    def listing(self, oid: str, *, from_store: bool = False) -> list[FileEntry]:
        """The entries of the ``.dir`` listing ``oid``, from the worker cache where it holds it intact (unless
        ``from_store``), else from the store (and then kept in the cache); see :func:`parse_listing`.

        Raises:
            ListingError: missing from the store, not matching its hash (a corrupted cached copy is
                removed), or not a listing.
        """
        path = self.cached(oid)
        raw = None
        if not from_store:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raw = path.read_bytes()
        if raw is not None:
            try:
                return parse_listing(oid, raw)
            except ListingError as exc:
                if exc.kind != "hash_mismatch":
                    raise
                with contextlib.suppress(OSError):
                    path.unlink()  # corrupted in the cache: read the store's
        try:
            raw, _ = self.backend.get(layout.object_key(oid))
        except KeyMissing:
            raise ListingError(
                f"the listing {layout.object_key(oid)} of a version is missing from {self.url}; run `gitfree fsck`",
                "missing_listing",
            ) from None
        entries = parse_listing(oid, raw)
        if not from_store:
            with contextlib.suppress(IsADirectoryError, NotADirectoryError):  # something else there: leave it
                atomic_write(path, raw)
        return entries

    def keep_listing(self, oid: str, listing: bytes) -> None:
        """Put the listing ``oid`` (``listing``: its bytes, hash-checked here) in the worker cache unless it is
        there intact: a version by reference's listing is rebuilt from its table, not read from the store."""
        parse_listing(oid, listing)
        path = self.cached(oid)
        with contextlib.suppress(OSError):
            if path.read_bytes() == listing:
                return
        atomic_write(path, listing)

    def refer(self, oid: str, table: References, listing: bytes, source: Source, table_md5: str) -> None:
        """Learn where the files of a version by reference are (its listing ``oid``, rebuilt from ``table`` (whose
        md5 is ``table_md5``) as ``listing``, and the ``source`` its entries name): a read that finds an object
        neither in the worker cache nor in ``files/md5/`` reads it from there, pinned and hash-checked
        (:meth:`fetch`, :meth:`peek`). The last :data:`REFERENCES_KEPT` tables are kept."""
        self.keep_listing(oid, listing)
        most, entries_max = REFERENCES_KEPT
        with self._checked_lock:
            self._referenced[table_md5] = (source, {entry.md5: entry for entry in table.entries})
            self._referenced.move_to_end(table_md5)
            while len(self._referenced) > 1 and (
                len(self._referenced) > most or sum(len(e) for _, e in self._referenced.values()) > entries_max
            ):
                self._referenced.popitem(last=False)

    def referred(self, table_md5: str) -> bool:
        """Whether the table ``table_md5`` is kept (:meth:`refer`); it is then the last used."""
        with self._checked_lock:
            if table_md5 not in self._referenced:
                return False
            self._referenced.move_to_end(table_md5)
            return True

    def _places(self, md5: str) -> list[tuple[Source, ReferenceEntry]]:
        """Every place the bytes of ``md5`` are, by the kept tables (the last used first)."""
        with self._checked_lock:
            return [(source, entries[md5]) for source, entries in reversed(self._referenced.values()) if md5 in entries]

    def _where(self, md5: str) -> tuple[Source, ReferenceEntry] | None:
        """The first of :meth:`_places`, if any."""
        places = self._places(md5)
        return places[0] if places else None

    def files(self, out: Output) -> list[FileEntry]:
        """The files of a version's output: its listing's entries, or the one file."""
        if not out.is_dir:
            return [FileEntry(path=out.path, md5=out.md5, size=out.size)]
        return self.listing(out.md5)

    def checked_files(self, out: Output) -> list[FileEntry]:
        """:meth:`files`, their paths judged by :func:`.tree.validate_entries` (``UnsafePathError``). A listing's
        entries are kept in memory once checked (:data:`LISTINGS_KEPT`): objects never change, so a long-lived
        process (``gitfree ui``, a worker) parses and checks a listing once, not at every read of the version."""
        if not out.is_dir:
            single = self.files(out)
            validate_entries(single)
            return single
        with self._checked_lock:
            kept = self._checked.get(out.md5)
            if kept is not None:
                self._checked.move_to_end(out.md5)
                return list(kept)
        entries = self.files(out)
        validate_entries(entries)
        most, entries_max = LISTINGS_KEPT
        with self._checked_lock:
            self._checked[out.md5] = tuple(entries)
            self._checked.move_to_end(out.md5)
            while len(self._checked) > 1 and (
                len(self._checked) > most or sum(len(e) for e in self._checked.values()) > entries_max
            ):
                dropped, _ = self._checked.popitem(last=False)
                self._trees.pop(dropped, None)
        return entries

    def tree(self, out: Output) -> Tree:
        """The :class:`.tree.Tree` of a version's output (what is at or under each path), built once per listing
        kept by :meth:`checked_files`: ``open``, ``file`` and ``peek`` of one file cost a lookup, not a build."""
        entries = self.checked_files(out)
        if not out.is_dir:
            return Tree.build(entries)
        with self._checked_lock:
            tree = self._trees.get(out.md5)
        if tree is None:
            tree = Tree.build(entries)
            with self._checked_lock:
                if out.md5 in self._checked:
                    self._trees[out.md5] = tree
        return tree

    def referenced(self, oid: str) -> set[str]:
        """Every object an output ``oid`` references: itself, and for a listing the files it names."""
        if not layout.is_listing(oid):
            return {oid}
        return {oid} | {entry.md5 for entry in self.listing(oid)}

    # ------------------------------------------------------------------ sizes and presence

    def sizes(self, md5s: Iterable[str]) -> dict[str, int]:
        """Object sizes, from the worker cache where present, else from the store (a HEAD each); an object
        missing from both has none."""

        def size(md5: str) -> int:
            with contextlib.suppress(OSError):
                return self.cached(md5).stat().st_size
            try:
                return self.backend.size(layout.object_key(md5))
            except KeyMissing:
                where = self._where(md5)
                return where[1].size if where else -1

        unique = sorted(set(md5s))
        with ThreadPoolExecutor(max_workers=_SIZE_JOBS) as pool:
            return {md5: s for md5, s in zip(unique, pool.map(size, unique), strict=True) if s >= 0}

    def scan(self) -> dict[str, ObjectInfo]:
        """Every object in the store (one listing of ``files/md5/``), by oid."""
        return {oid: info for info in self.backend.scan(layout.OBJECTS) if (oid := layout.parse_object_key(info.key))}

    def listed_md5s(self) -> dict[str, str]:
        """The md5 the store's listing gives of each object where its ETag is not one (Azure's Content-MD5), by
        oid: one more listing of ``files/md5/`` on Azure, none elsewhere."""
        listed = self.backend.listed_md5s(layout.OBJECTS)
        return {oid: md5 for key, md5 in listed.items() if (oid := layout.parse_object_key(key))}

    def intact_in_cache(self, oid: str) -> bool:
        """Whether the worker cache holds ``oid`` with the right content (hashed now)."""
        try:
            return md5_file(self.cached(oid)) == layout.md5_of(oid)
        except OSError:
            return False

    # ------------------------------------------------------------------ moving

    def fetch(self, ref: str, md5s: Iterable[str], state: HashState) -> None:
        """Download the objects of version ``ref`` among ``md5s`` that the worker cache lacks, in parallel.

        They are hashed as they stream in and remembered in ``state`` as verified.

        Raises:
            IntegrityError: an object is missing from the store or does not match its hash.
        """
        root = str(self.cache_dir)
        missing = sorted({md5 for md5 in md5s if not os.path.isfile(f"{root}/{layout.object_key(md5)}")})
        if not missing:
            return
        failed = self.transfer().download(missing, self.callback(f"Downloading {ref}"))
        state.remember((str(self.cached(md5)), md5) for md5 in missing if md5 not in failed)
        referenced = self._located(ref, failed)
        if referenced:  # not in the store (not materialised): from the source, pinned and hash-checked
            with ThreadPoolExecutor(max_workers=min(self.jobs, 32)) as pool:
                list(pool.map(self._from_source, referenced.items()))
            state.remember((str(self.cached(md5)), md5) for md5 in referenced)
            failed -= set(referenced)
        if len(failed) == 1:
            raise IntegrityError(
                f"the object {layout.object_key(next(iter(failed)))} of {ref} is missing from {self.url} "
                "or does not match its hash; run `gitfree fsck`"
            )
        if failed:
            raise IntegrityError(
                f"{len(failed)} objects of {ref} are missing from {self.url} or do not match their hash "
                f"(e.g. {layout.object_key(min(failed))}); run `gitfree fsck`"
            )

    def _located(self, ref: str, md5s: Collection[str]) -> dict[str, list[tuple[Source, ReferenceEntry]]]:
        """Where each of ``md5s`` (files ``files/md5/`` lacks) is, by the kept tables; those of ``ref`` learnt again
        (:attr:`relearn`) when some are in none."""
        found = {md5: places for md5 in sorted(md5s) if (places := self._places(md5))}
        if len(found) < len(md5s) and self.relearn is not None:
            self.relearn(ref)
            found = {md5: places for md5 in sorted(md5s) if (places := self._places(md5))}
        return found

    def _from_source(self, item: tuple[str, list[tuple[Source, ReferenceEntry]]]) -> None:
        """Read one referenced file from its source into a temporary file beside its place in the cache, hashed
        as it streams; only bytes of the entry's md5 and size are renamed into the cache (R1)."""
        md5, places = item
        errors: list[IntegrityError | ConfigError] = []
        for source, entry in places:
            try:
                return self._read_source(md5, source, entry)
            except (IntegrityError, ConfigError) as exc:  # drifted, or unreachable from here: the next place
                errors.append(exc)
        raise errors[0]  # the place told last: the version being read, in a command reading one

    def _read_source(self, md5: str, source: Source, entry: ReferenceEntry) -> None:
        """One place of ``md5``: ``entry`` of ``source``, read and checked as :meth:`_from_source` says."""
        target = self.cached(md5)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.cache_dir / layout.CACHE_TMP
        temporary.mkdir(parents=True, exist_ok=True)
        tmp = temporary / owned_name(md5, ".ref")  # swept by the next download once its writer is gone
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                got = source.read_into(entry, out)
                size = out.tell()
            if (got, size) != (entry.md5, entry.size):
                raise IntegrityError(
                    f"{source.key_url(entry)} changed since it was committed by reference: md5 {got} ({size} bytes) "
                    f"of the bytes read, expected {entry.md5} ({entry.size} bytes); nothing was kept of it"
                )
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def materialize(self, ref: str, md5s: Collection[str], state: HashState) -> tuple[int, int]:
        """Put the referenced files ``md5s`` of ``ref`` (which ``files/md5/`` lacks) into the store: by server-side
        copy where that is safe (:meth:`_copy_place`), else streamed as a read is, then uploaded. Returns how many
        were copied and how many streamed (docs/design.md, "Materialize").

        Raises:
            IntegrityError: a source file no longer holds what was committed (naming its key); what was put
                into the store before stays, and a later call goes on from there.
        """
        places = {md5: place for md5 in sorted(md5s) if (place := self._copy_place(md5)) is not None}
        by_etag = [md5 for md5, (_, entry) in places.items() if not entry.version_id]
        if by_etag and not self._copy_pin_honoured(*places[by_etag[0]]):
            places = {md5: place for md5, place in places.items() if md5 not in set(by_etag)}
        with ThreadPoolExecutor(max_workers=min(self.jobs, 32)) as pool:
            done = list(pool.map(self._copy_in, places, places.values()))
        copied = {md5 for md5, ok in zip(places, done, strict=True) if ok}
        streamed = sorted(set(md5s) - copied)
        if streamed:
            self._drop_unproven(streamed, state)
            self.fetch(ref, streamed, state)
            self.upload(streamed, f"Materializing {ref}")
        return len(copied), len(streamed)

    def _drop_unproven(self, md5s: Collection[str], state: HashState) -> None:
        """Remove the worker cache's copies of ``md5s`` that neither the hash state vouches for nor hash to their md5
        now (R6: what :meth:`materialize` uploads into ``files/md5/X`` is X's bytes, not a copy changed in the
        cache since it was read); :meth:`fetch` then reads them again, pinned and hash-checked."""
        paths = {str(self.cached(md5)): md5 for md5 in md5s if self.cached(md5).is_file()}
        known = state.known(list(paths)) if paths else {}
        for path, md5 in paths.items():
            if known.get(path) == md5:
                continue
            if self.intact_in_cache(md5):
                state.remember([(path, md5)])
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _copy_place(self, md5: str) -> tuple[S3Source, ReferenceEntry] | None:
        """Where the referenced file ``md5`` can be copied from server-side into ``files/md5/<md5>``, if anywhere:
        the first of its places whose source is an S3 prefix on the store's S3 service and credentials
        (:meth:`.S3Backend.shares_access`), whose recorded ETag is its md5 (a single-part upload, not encrypted: the
        pinned copy's bytes are those the md5 names, and the copy's ETag proves it) and which fits one
        ``CopyObject`` (:data:`COPY_MAX`). ``None``: it is streamed."""
        if not isinstance(self.backend, S3Backend):
            return None
        for source, entry in self._places(md5):
            if (
                isinstance(source, S3Source)
                and entry.etag == entry.md5
                and entry.size <= COPY_MAX
                and self.backend.shares_access(source.backend)
            ):
                return source, entry
        return None

    def _copy_pin_honoured(self, source: S3Source, entry: ReferenceEntry) -> bool:
        """Whether the source's server refuses a ``CopySourceIfMatch`` that is not the key's ETag (one copy, to a
        probe key, that must fail with 412): a server that ignored it could copy drifted bytes into
        ``files/md5/``, so without it the files pinned by ETag are streamed and hash-checked instead."""
        assert isinstance(self.backend, S3Backend)  # noqa: S101 - _copy_place said so
        probe = layout.probe_key(f"copy-{uuid.uuid4().hex}")
        try:
            etag = self.backend.copy_from(source.backend, entry.path, probe, version_id=None, etag=f"{'0' * 31}1-0")
        except PreconditionFailed:
            return True
        except KeyMissing:
            return False  # nothing learned (the key is gone): stream, and the read says what changed
        self.backend.delete_if(probe, etag)
        logger.warning(
            "%s copied %s although its CopySourceIfMatch was not the key's ETag; its files are streamed instead",
            self.backend.endpoint or "AWS S3",
            source.key_url(entry),
        )
        return False

    def _copy_in(self, md5: str, place: tuple[S3Source, ReferenceEntry]) -> bool:
        """One server-side copy of a referenced file into ``files/md5/<md5>``, pinned, then checked: the copy's
        ETag must be the md5 (else one streamed read of the copy must hash to it); a copy that is not is removed
        and is an ``IntegrityError`` (the store's ``files/md5/X`` holds only bytes whose md5 is X). ``False``: not
        copied, to be streamed (its pinned VersionId is gone; a read tries the key by its ETag, hash-checked; or the
        copy's pin refused it and another place of the md5 is known: the read tries every place in turn)."""
        assert isinstance(self.backend, S3Backend)  # noqa: S101 - _copy_place said so
        source, entry = place
        key = layout.object_key(md5)
        try:
            pin = entry.etag or md5
            etag = self.backend.copy_from(source.backend, entry.path, key, version_id=entry.version_id, etag=pin)
        except KeyMissing:
            if entry.version_id or len(self._places(md5)) > 1:
                return False
            raise source.drift_error(entry, missing=True) from None
        except PreconditionFailed:
            if len(self._places(md5)) > 1:
                return False  # another place may still hold the bytes: the streamed read tries each in turn
            raise source.drift_error(entry, missing=False) from None
        if etag == md5:
            return True
        got, size = self.backend.md5(key)  # an ETag that is no md5 (say, a bucket encrypting with KMS): read it
        if (got, size) != (md5, entry.size):
            self.backend.delete_if(key, etag)
            raise IntegrityError(
                f"the copy of {source.key_url(entry)} into {self.url}/{key} holds md5 {got} ({size} bytes), expected "
                f"{md5} ({entry.size} bytes); it was removed (restore the source, or commit it again)"
            )
        return True

    def verified(self, ref: str, md5: str) -> Path:
        """The worker cache's copy of one object of ``ref``, proven intact (by the hash state or by hashing),
        fetched first where it is missing or corrupted."""
        cached = self.cached(md5)
        with HashState(self.cache_dir) as state:
            if cached.is_file() and state.known([str(cached)]).get(str(cached)) != md5:
                if self.intact_in_cache(md5):
                    state.remember([(str(cached), md5)])
                else:
                    cached.unlink()  # corrupted in the cache: fetch a good copy
            self.fetch(ref, [md5], state)
        return cached

    def peek(self, oid: str, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of object ``oid``, cut at its end, not hash-checked: from the worker cache
        when the hash state vouches for its copy (hashed or verified there, unchanged since: no hashing now),
        else one ranged read of the store. Raise :class:`KeyMissing` if the store lacks it."""
        cached = self.cached(oid)
        if end > start and self._vouched_for(oid):
            with contextlib.suppress(OSError), open(cached, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(min(start, size))
                return f.read(max(0, min(end, size) - start))
        try:
            return self.backend.get_range(layout.object_key(oid), start, end)
        except KeyMissing:
            if not self._places(oid):
                raise
            return self._peek_source(oid, start, end)

    def _peek_source(self, oid: str, start: int, end: int) -> bytes:
        """:meth:`peek` of a referenced file the store lacks: each place it is (pinned as a read is), in turn."""
        errors: list[IntegrityError | ConfigError] = []
        for source, entry in self._places(oid):
            try:
                return source.read_range(entry, start, end)
            except (IntegrityError, ConfigError) as exc:  # drifted, or unreachable from here: the next place
                errors.append(exc)
        raise errors[0]  # the place told last: the version being read, in a command reading one

    def sized(self, ref: str, entry: FileEntry) -> FileEntry:
        """``entry`` with its size (see :meth:`.Store.file`); ``IntegrityError`` if the store lacks its object."""
        if entry.size is not None:
            return entry
        size = self.sizes([entry.md5]).get(entry.md5)
        if size is None and self._located(ref, [entry.md5]):
            size = self.sizes([entry.md5]).get(entry.md5)
        if size is None:
            raise self._missing(ref, entry)
        return entry.model_copy(update={"size": size})

    def peek_file(self, ref: str, entry: FileEntry, offset: int, length: int) -> bytes:
        """What :meth:`.Store.peek` reads of the file ``entry`` of ``ref`` (arguments checked by :func:`check_peek`)."""
        if not layout.is_md5(entry.md5):
            raise InputError(f"the entry {entry.path!r} names no object (md5 {entry.md5!r}); pass one files() listed")
        if length == 0:
            return b""
        start = offset if offset >= 0 else max(0, (self.sized(ref, entry).size or 0) + offset)
        try:
            return self.peek(entry.md5, start, start + length)
        except KeyMissing:
            if not self._located(ref, [entry.md5]):
                raise self._missing(ref, entry) from None
        try:
            return self.peek(entry.md5, start, start + length)
        except KeyMissing:
            raise self._missing(ref, entry) from None

    def _missing(self, ref: str, entry: FileEntry) -> IntegrityError:
        return IntegrityError(
            f"the object {layout.object_key(entry.md5)} of {entry.path} in {ref} is missing from {self.backend.url}; "
            "run `gitfree fsck`"
        )

    def _vouched_for(self, oid: str) -> bool:
        """Whether the hash state says the worker cache's copy of ``oid`` is intact (the same inode, size and
        mtime as when it was hashed), remembered for the process while those stay the same (opening the
        state costs tens of milliseconds, and a preview peeks at one file several times)."""
        cached = self.cached(oid)
        try:
            st = cached.stat()
        except OSError:
            return False
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._vouched.get(oid) == seen:
            return True
        with HashState(self.cache_dir) as state:
            intact = state.known([str(cached)]).get(str(cached)) == layout.md5_of(oid)
        if intact:
            if len(self._vouched) >= 4096:
                self._vouched.clear()
            self._vouched[oid] = seen
        return intact

    def upload(self, oids: Collection[str], description: str | None = None) -> None:
        """PUT each object from the worker cache; returns when all are durable, raises on the first failure."""
        if oids:
            self.transfer().upload(oids, self.callback(description) if description else DEFAULT_CALLBACK)

    def present(self, oids: Collection[str]) -> set[str]:
        """The oids the store has (one HEAD each)."""
        return self.transfer().present(oids) if oids else set()
