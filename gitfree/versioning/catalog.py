"""The catalog of a store: version records, tombstones, tags, ``latest.json`` hints and the store marker.

The only module that parses records (docs/design.md, "Records"). It reads them (one at a time with a
GET, many at once with parallel reads), resolves refs to versions (docs/design.md, "Reading"), and
makes the catalog's conditional writes: a record created only if its number is free, ``latest.json``
moved forward by compare-and-swap, a tag created or swapped. In which order those writes happen is the
business of :mod:`.protocol`; what garbage collection and ``fsck`` need to see of the whole catalog at
once is :meth:`Catalog.inventory`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from . import layout
from .backends import Backend, KeyExists, KeyMissing, OutcomeUnknown, PreconditionFailed
from .errors import ConfigError, InputError, IntegrityError, NotFoundError, first_error
from .kit import who
from .models import (
    FORMAT,
    REFERENCE_FORMAT,
    Dropped,
    Latest,
    Lease,
    References,
    RunNote,
    Stages,
    StepRun,
    StoreMarker,
    Tag,
    TagEvent,
    Uploads,
    UsedBy,
    Version,
    utcnow,
)
from .refs import Ref, parse_ref, validate_dataset_name

__all__ = ["Catalog", "Gone", "Inventory", "made_by", "parse_lease", "span", "who"]

logger = logging.getLogger("gitfree")

M = TypeVar("M", bound=BaseModel)
Reader = Callable[[Collection[str]], dict[str, "bytes | None"]]
"""Reads many keys at once (``None`` for a key that does not exist)."""

_READ_JOBS = 32
"""Parallel GETs of tags (one small record each)."""
_probed: set[tuple[str, str | None]] = set()
"""The stores this process proved writable (by URL and endpoint)."""
_probed_lock = threading.Lock()


class Gone(KeyMissing):
    """The version was dropped by garbage collection: its key holds a tombstone (``record``)."""

    def __init__(self, record: Dropped) -> None:
        super().__init__(layout.version_key(record.dataset, record.number))
        self.record = record


@dataclass
class Entry:
    """One dataset as :meth:`Catalog.inventory` found it."""

    versions: dict[int, Version] = field(default_factory=dict)
    dropped: dict[int, Dropped] = field(default_factory=dict)
    unreadable: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    """Records that do not parse, by number: their bytes and why."""
    written: dict[int, datetime] = field(default_factory=dict)
    """The server's time of each record (its clock, not a worker's)."""
    tags: list[Tag] = field(default_factory=list)
    bad_tags: dict[str, str] = field(default_factory=dict)
    """Tag keys that cannot be read (or name another tag) -> why."""
    latest: str | None = None
    """The key of its ``latest.json``, if there is one."""

    @property
    def uncertain(self) -> bool:
        """A record or tag cannot be read: what a retention policy would keep is unknown."""
        return bool(self.unreadable or self.bad_tags)


@dataclass
class Inventory:
    """Every record, tombstone and tag of the store (or of some datasets), and the upload journals."""

    datasets: dict[str, Entry]
    journals: dict[str, tuple[str, set[str]]] = field(default_factory=dict)
    """Upload journal key -> the lease id and the objects it names (none if it cannot be read)."""
    edges: dict[str, tuple[str, int, str, int]] = field(default_factory=dict)
    """Reverse lineage edge key -> ``(input, number, consumer, consumer number)``, from the key alone."""

    @property
    def unreadable(self) -> list[str]:
        """Keys of the records and tags that cannot be read."""
        keys = [layout.version_key(name, n) for name, e in self.datasets.items() for n in e.unreadable]
        return sorted(keys + [key for e in self.datasets.values() for key in e.bad_tags])


class Catalog:
    """Records, tags and hints of one store.

    Args:
        backend: the store's backend (single GETs and conditional writes).
        read_many: parallel reads of many small keys (records of a long history).
    """

    def __init__(self, backend: Backend, read_many: Reader) -> None:
        self.backend = backend
        self.url = backend.url
        self._read_many = read_many

    # ------------------------------------------------------------------ parsing

    def parse(self, key: str, raw: bytes, model: type[M]) -> M:
        """The record ``raw`` (read at ``key``) as ``model``; ``IntegrityError`` naming the key if it is not one."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise IntegrityError(f"the record {key} in {self.url} is not valid JSON (truncated or corrupted)") from None
        # A version (and the hint holding one) may be of format 2, by reference; every other record is of 1.
        newest = REFERENCE_FORMAT if model in (Version, Latest) else FORMAT
        if (fmt := _newer_format(data, newest)) is not None:
            raise IntegrityError(f"the record {key} in {self.url} has format {fmt}; upgrade gitfree to read it")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise IntegrityError(f"the record {key} in {self.url} is invalid: {first_error(exc)}") from None

    def read(self, key: str, model: type[M]) -> M:
        """GET and parse one record; ``KeyMissing`` when there is none."""
        raw, _ = self.backend.get(key)
        return self.parse(key, raw, model)

    def version_record(self, key: str, raw: bytes, dataset: str, number: int) -> Version | Dropped:
        """The record at ``versions/<number>.json``: a version or a tombstone, and the one it should be."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            data = None
        model: type[Version] | type[Dropped] = (
            Dropped if isinstance(data, dict) and data.get("dropped") is True else Version
        )
        record = self.parse(key, raw, model)
        if record.dataset != dataset or record.number != number:
            raise IntegrityError(f"the record {key} in {self.url} names {record.ref}, not {dataset}@{number}")
        return record

    # ------------------------------------------------------------------ records

    def record(self, dataset: str, number: int) -> Version | Dropped:
        """The record at ``dataset@number``: a version, or the tombstone GC left; raise ``KeyMissing``."""
        key = layout.version_key(dataset, number)
        raw, _ = self.backend.get(key)
        return self.version_record(key, raw, dataset, number)

    def taken(self, dataset: str, number: int) -> bool:
        """Whether ``dataset@number`` has a record (a version, a tombstone or an unreadable one); one request."""
        return self.backend.exists(layout.version_key(dataset, number))

    def version(self, dataset: str, number: int) -> Version:
        """The version ``dataset@number``; raise ``KeyMissing`` (:class:`Gone` when GC dropped it)."""
        record = self.record(dataset, number)
        if isinstance(record, Dropped):
            raise Gone(record)
        return record

    def references(self, version: Version) -> tuple[References, bytes]:
        """The reference table of a version by reference and its rebuilt ``.dir`` listing's bytes, both checked:
        the table's bytes have the md5 its key names, it names the version's source, and the listing rebuilt
        from it has the md5 of the version's ``pointer`` (docs/design.md, "Versions by reference").

        Raises:
            IntegrityError: the version is not by reference, or its table is missing, unreadable or not the
                version's (naming the table's key, and the listing's when they disagree).
        """
        if version.reference is None:
            raise IntegrityError(f"{version.ref} is not a version by reference")
        key = layout.reference_key(version.reference.table)
        try:
            raw, _ = self.backend.get(key)
        except KeyMissing:
            raise IntegrityError(
                f"the reference table {key} of {version.ref} is missing from {self.url}; run `gitfree fsck`"
            ) from None
        if hashlib.md5(raw, usedforsecurity=False).hexdigest() != version.reference.table:
            raise IntegrityError(f"the reference table {key} of {version.ref} does not match its hash; it was not used")
        table = self.parse(key, raw, References)
        listing = table.listing()
        if table.source != version.reference.source:
            raise IntegrityError(f"the reference table {key} names {table.source}, not {version.ref}'s source")
        if hashlib.md5(listing, usedforsecurity=False).hexdigest() != layout.md5_of(version.md5):
            raise IntegrityError(
                f"the reference table {key} of {version.ref} does not make its listing {layout.object_key(version.md5)}"
                " (the listing rebuilt from the table has another md5); it was not used"
            )
        return table, listing

    def table_listings(self, md5s: Iterable[str]) -> dict[str, str | None]:
        """For each reference table ``references/<md5>.json`` (read in parallel): the oid (``md5.dir``) of the listing
        it makes, or ``None`` when it is missing, does not match its hash or does not parse (garbage collection keeps
        the tables a live commit lease names through that listing)."""
        keys = {layout.reference_key(md5): md5 for md5 in md5s}
        found: dict[str, str | None] = {}
        for key, raw in self._read_many(list(keys)).items():
            md5 = keys[key]
            found[md5] = None
            if raw is None or hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5:
                continue
            with contextlib.suppress(IntegrityError):
                listing = self.parse(key, raw, References).listing()
                found[md5] = layout.listing_oid(hashlib.md5(listing, usedforsecurity=False).hexdigest())
        return found

    def numbers(self, dataset: str) -> list[int]:
        """Every number with a record (versions and tombstones of dropped ones), ascending."""
        numbers = []
        for key in self.backend.list(layout.versions_prefix(dataset)):
            parsed = layout.parse_version_key(key)
            if parsed and parsed[0] == dataset:
                numbers.append(parsed[1])
        return sorted(numbers)

    def records(
        self, dataset: str, numbers: Sequence[int], first: int = 64
    ) -> Iterator[tuple[int, Version | Dropped | None]]:
        """The records of ``numbers`` in that order, read in parallel batches (the first of ``first``, then
        doubling to at least 64); ``None`` for one that cannot be read (reported as a warning and skipped: one bad
        record never blocks the rest)."""
        start, batch = 0, max(1, first)
        while start < len(numbers):
            keys = {n: layout.version_key(dataset, n) for n in numbers[start : start + batch]}
            start, batch = start + batch, max(batch, min(64, batch * 2))
            raw = self._read_many(list(keys.values()))
            for number, key in keys.items():
                data = raw.get(key)
                if data is None:  # removed since the listing
                    continue
                try:
                    yield number, self.version_record(key, data, dataset, number)
                except IntegrityError as exc:
                    logger.warning("skipped %s@%d: %s", dataset, number, exc)
                    yield number, None

    def head(self, dataset: str) -> Version | None:
        """The newest readable version: ``latest.json`` is a hint, believed only if the record at its number
        is that version; then probe forward past it. Tombstones and unreadable records are stepped over."""
        head = self._hinted(dataset)
        if head is None:
            for _, record in self.records(dataset, self.numbers(dataset)[::-1], first=2):
                if isinstance(record, Version):
                    head = record
                    break
            if head is None:
                return None
        number = head.number + 1
        while True:
            try:
                record = self.record(dataset, number)
            except KeyMissing:
                return head
            except IntegrityError as exc:
                logger.warning("skipped %s@%d: %s", dataset, number, exc)
            else:
                if isinstance(record, Version):
                    head = record
            number += 1

    def heads(self, datasets: Collection[str]) -> dict[str, Version | None]:
        """:meth:`head` of many datasets at once, in three rounds of parallel reads: every ``latest.json``,
        the records they name, and the number after each. A dataset whose hint is missing, does not match
        its record, or is not the last is read by :meth:`head` alone."""
        names = sorted(set(datasets))
        hints: dict[str, Version] = {}
        raw = self._read_many([layout.latest_key(n) for n in names]) if names else {}
        for name in names:
            data = raw.get(layout.latest_key(name))
            with contextlib.suppress(IntegrityError):
                if data is not None:
                    latest = self.parse(layout.latest_key(name), data, Latest)
                    if latest.version.dataset == name and latest.version.number == latest.number:
                        hints[name] = latest.version
        records, _ = self.records_at({(n, v.number) for n, v in hints.items()})
        confirmed = {n: v for n, v in hints.items() if records.get((n, v.number)) == v}
        after = self.present({layout.version_key(n, v.number + 1) for n, v in confirmed.items()})
        found: dict[str, Version | None] = {}
        for name in names:
            version = confirmed.get(name)
            if version is not None and layout.version_key(name, version.number + 1) not in after:
                found[name] = version
            else:
                found[name] = self.head(name)
        return found

    def _hinted(self, dataset: str) -> Version | None:
        """The version ``latest.json`` names, if the record at its number agrees (a forged or buggy hint
        that disagrees with it is not believed)."""
        try:
            latest = self.read(layout.latest_key(dataset), Latest)
            if latest.version.dataset != dataset or latest.version.number != latest.number:
                return None
            pointed = self.record(dataset, latest.number)
        except (KeyMissing, IntegrityError):
            return None
        if isinstance(pointed, Version) and pointed == latest.version:
            return pointed
        logger.warning("%s does not match the record of %s; ignored", layout.latest_key(dataset), pointed.ref)
        return None

    def live(self, dataset: str) -> list[int]:
        """The numbers of the versions that exist (not dropped, readable), ascending. Reads every record."""
        return sorted(n for n, r in self.records(dataset, self.numbers(dataset)) if isinstance(r, Version))

    def datasets(self) -> list[str]:
        """The names of every dataset in the store, sorted."""
        names = set()
        for key in self.backend.list(layout.DATASETS):
            parsed = layout.parse_version_key(key)
            if parsed:
                names.add(parsed[0])
        return sorted(names)

    def log(self, dataset: str, limit: int | None = None, before: int | None = None) -> list[Version]:
        """The versions of a dataset, newest first (at most ``limit``; only those numbered below ``before``);
        dropped and unreadable ones left out. Only the records of the versions returned (and of dropped or
        unreadable ones among them) are read, after one listing of the dataset's numbers."""
        validate_dataset_name(dataset)
        if before is not None and (isinstance(before, bool) or not isinstance(before, int) or before < 1):
            raise InputError(f"before must be a version number (1 or more), not {before!r}")
        numbers = sorted(self.numbers(dataset), reverse=True)
        if not numbers:
            raise self.not_found_dataset(dataset)
        if before is not None:
            numbers = [n for n in numbers if n < before]
        versions: list[Version] = []
        for _, record in self.records(dataset, numbers, first=len(numbers) if limit is None else limit + 1):
            if isinstance(record, Version):
                versions.append(record)
                if limit is not None and len(versions) >= limit:
                    break
        return versions

    # ------------------------------------------------------------------ refs

    def resolve(self, ref: str | Ref) -> Version:
        """The version a ref names (docs/design.md, "Reading"); ``NotFoundError`` saying what exists."""
        parsed = parse_ref(ref)
        dataset = parsed.dataset
        if parsed.tag is not None:
            number = self._tagged(dataset, parsed.tag).number
        elif parsed.number is not None:
            number = parsed.number
        else:
            head = self.head(dataset)
            if head is None:
                raise self.not_found_dataset(dataset)
            return self._back(head, parsed) if parsed.back else head
        try:
            return self.version(dataset, number)
        except Gone as gone:
            raise self.gone(gone.record) from None
        except KeyMissing:
            raise self._not_found_version(dataset, f"version {number}") from None

    def _tagged(self, dataset: str, tag: str) -> Tag:
        try:
            found = self.read(layout.tag_key(dataset, tag), Tag)
            if found.deleted:  # a deleted tag's record stays as a marker: it names no version
                raise self._deleted_tag(found)
            return found
        except KeyMissing:
            tags = sorted(t.tag for t in self.tags(dataset)) if self.numbers(dataset) else None
            if tags is None:
                raise self.not_found_dataset(dataset) from None
            have = f"its tags are: {', '.join(tags)}" if tags else "it has no tags"
            raise NotFoundError(f"{dataset!r} has no tag {tag!r}; {have}") from None

    def _back(self, head: Version, parsed: Ref) -> Version:
        """``latest~K``: the K-th existing version before the head (dropped ones do not count)."""
        back = parsed.back or 0
        older = [n for n in self.numbers(head.dataset) if n < head.number][::-1]
        live = [head.number]
        for number, record in self.records(head.dataset, older, first=back + 1):
            if isinstance(record, Version):
                live.append(number)
                if len(live) == back + 1:
                    return record
        raise NotFoundError(f"{parsed} is before the first version: {head.dataset!r} has {span(sorted(live))}")

    def not_found_dataset(self, dataset: str) -> NotFoundError:
        names = self.datasets()
        if not names:
            return NotFoundError(f"dataset {dataset!r} does not exist: the store {self.url} has no datasets yet")
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return NotFoundError(f"dataset {dataset!r} does not exist in {self.url}; it has: {shown}")

    def _not_found_version(self, dataset: str, what: str) -> NotFoundError:
        live = self.live(dataset)
        if not live:
            return self.not_found_dataset(dataset)
        return NotFoundError(f"{dataset!r} has no {what}; it has {span(live)}")

    def gone(self, record: Dropped) -> NotFoundError:
        """What a reader of a dropped version is told. Cheap on purpose (the head, not every record):
        "is my training input still there?" is asked in loops."""
        head = self.head(record.dataset)
        newest = f"; the newest version is {head.ref}" if head is not None else ""
        by = f" (on {record.dropped_by.host})" if record.dropped_by.host else ""
        return NotFoundError(
            f"{record.ref} was dropped by garbage collection on {record.dropped_at:%Y-%m-%d %H:%M} UTC{by}; its data "
            f"is no longer kept{newest} (`gitfree log {record.dataset}` lists the versions that exist)"
        )

    # ------------------------------------------------------------------ tags

    def tags(self, dataset: str) -> list[Tag]:
        """The tags of a dataset, sorted by name; one that cannot be read is skipped with a warning."""
        validate_dataset_name(dataset)
        keys = [k for k in self.backend.list(layout.tags_prefix(dataset)) if layout.parse_tag_key(k)]
        if not keys and not self.numbers(dataset):  # a misspelt name is not "no tags"
            raise self.not_found_dataset(dataset)

        def read(key: str) -> Tag | None:
            try:
                return self.read(key, Tag)
            except KeyMissing:  # removed since the listing
                return None
            except IntegrityError as exc:  # one bad tag never hides the others
                logger.warning("skipped %s", exc)
                return None

        with ThreadPoolExecutor(max_workers=_READ_JOBS) as pool:
            tags = [t for t in pool.map(read, keys) if t is not None and not t.deleted]
        return sorted(tags, key=lambda t: t.tag)

    def _deleted_tag(self, record: Tag) -> NotFoundError:
        """What a reader of a deleted tag is told: when, by whom, why, and which tags there are."""
        names = [t.tag for t in self.tags(record.dataset)]
        have = f"its tags are: {', '.join(names)}" if names else "it has no tags now"
        why = f", saying {record.message!r}" if record.message else ""
        return NotFoundError(
            f"the tag {record.tag!r} of {record.dataset!r} was deleted on {record.created_at:%Y-%m-%d %H:%M} UTC by "
            f"{who(record.author)}{why}; it pointed at version {record.number}, and {have} "
            f"(`gitfree tag-history {record.dataset} {record.tag}` shows its moves)"
        )

    def read_tag(self, key: str) -> tuple[Tag, str]:
        """The tag at ``key`` and its etag; ``KeyMissing`` when there is none."""
        raw, etag = self.backend.get(key)
        return self.parse(key, raw, Tag), etag

    # ------------------------------------------------------------------ tag history and stages

    def tag_histories(self, dataset: str, tag: str | None = None) -> dict[str, list[TagEvent]]:
        """The history of ``tag`` (of every tag without it), oldest first: the entries, read in parallel,
        and the event of each current tag record whose entry is not written yet (its writer stopped between
        its write and its entry). An entry that cannot be read is skipped with a warning."""
        history = layout.tag_history_prefix(dataset, tag)
        entries = {k: p for k in self.backend.list(history) if (p := layout.parse_tag_event_key(k)) and p[0] == dataset}
        records = (
            [layout.tag_key(dataset, tag)] if tag is not None else list(self.backend.list(layout.tags_prefix(dataset)))
        )
        raw = self._read_many([*entries, *records])
        found: dict[str, dict[int, TagEvent]] = defaultdict(dict)
        for key, (_, name, seq) in entries.items():
            if (data := raw.get(key)) is not None and (event := self._event(key, data, dataset, name, seq)):
                found[name][seq] = event
        for key in records:
            if (data := raw.get(key)) is None or not (named := layout.parse_tag_key(key)) or named[0] != dataset:
                continue
            try:
                current = self.parse(key, data, Tag)
            except IntegrityError as exc:
                logger.warning("skipped %s", exc)
                continue
            if current.dataset == dataset and current.tag == named[1]:
                found[current.tag].setdefault(current.seq, TagEvent.of(current))
        return {name: [events[seq] for seq in sorted(events)] for name, events in sorted(found.items())}

    def _event(self, key: str, data: bytes, dataset: str, tag: str, seq: int) -> TagEvent | None:
        try:
            event = self.parse(key, data, TagEvent)
        except IntegrityError as exc:
            logger.warning("skipped %s", exc)
            return None
        if (event.dataset, event.tag, event.seq) != (dataset, tag, seq):
            logger.warning("skipped %s in %s: it is the entry of %s, seq %d", key, self.url, event.ref, event.seq)
            return None
        return event

    def last_seq(self, dataset: str, tag: str) -> int:
        """The highest ``seq`` in the history of ``tag`` (0 if it has none): where a tag whose record is
        missing (never created, or removed by hand) starts counting again, so no entry is ever written twice."""
        seqs = [
            p[2]
            for k in self.backend.list(layout.tag_history_prefix(dataset, tag))
            if (p := layout.parse_tag_event_key(k))
        ]
        return max(seqs, default=0)

    def stages(self, dataset: str) -> tuple[Stages | None, str]:
        """The stage order of ``dataset`` and its etag; ``(None, "")`` when none was set."""
        key = layout.stages_key(dataset)
        try:
            raw, etag = self.backend.get(key)
        except KeyMissing:
            return None, ""
        record = self.parse(key, raw, Stages)
        if record.dataset != dataset:
            raise IntegrityError(f"the record {key} in {self.url} names the dataset {record.dataset!r}")
        return record, etag

    # ------------------------------------------------------------------ conditional writes

    def create(self, key: str, record: BaseModel) -> str:
        """Write ``record`` at ``key`` only if nothing is there (``If-None-Match: *``); its etag.

        Raises ``KeyExists`` (someone else's is there) or ``OutcomeUnknown`` (the answer was lost).
        """
        return self.backend.create(key, record.model_dump_json(indent=2).encode())

    def create_table(self, md5: str, data: bytes) -> None:
        """Create the reference table ``references/<md5>.json`` (``data``, whose md5 is ``md5``). Its key is its
        content's hash, so finding it there already is success; an answer lost is settled by looking."""
        key = layout.reference_key(md5)
        for _ in range(3):
            try:
                self.backend.create(key, data)
                return
            except KeyExists:
                return
            except OutcomeUnknown:
                if self.backend.exists(key):
                    return
        raise OutcomeUnknown(key)

    def swap(self, key: str, record: BaseModel, etag: str) -> str:
        """Replace what is at ``key`` only if it still has ``etag`` (``If-Match``); the new etag.

        Raises ``PreconditionFailed`` (it changed) or ``OutcomeUnknown``.
        """
        return self.backend.replace(key, record.model_dump_json(indent=2).encode(), etag)

    def delete_if(self, key: str, etag: str) -> None:
        """Remove what is at ``key`` if it is still what had ``etag`` (a tag this process wrote)."""
        with contextlib.suppress(KeyMissing):
            if self.backend.get(key)[1] == etag:
                self.backend.delete(key)

    def bury(self, tombstone: Dropped) -> None:
        """Replace a dropped version's record by its tombstone. Only garbage collection, under its lock,
        rewrites a record: the key exists, so no writer can create it again."""
        # No ``inputs`` key when it has none, so that gitfree before lineage still reads the tombstone.
        data = tombstone.model_dump_json(indent=2, exclude=None if tombstone.inputs else {"inputs"})
        self.backend.put(layout.version_key(tombstone.dataset, tombstone.number), data.encode())

    def advance_latest(self, version: Version) -> bool:
        """Move ``latest.json`` forward to ``version`` (never back) with ``If-Match``. It is only a hint:
        false if it could not be moved (readers then find the head by probing)."""
        key = layout.latest_key(version.dataset)
        data = Latest(format=version.format, number=version.number, version=version).model_dump_json().encode()
        for _ in range(20):
            try:
                raw, etag = self.backend.get(key)
            except KeyMissing:
                with contextlib.suppress(KeyExists, OutcomeUnknown):
                    self.backend.create(key, data)
                    return True
                continue
            with contextlib.suppress(IntegrityError):
                if self.parse(key, raw, Latest).number >= version.number:
                    return True
            with contextlib.suppress(PreconditionFailed, OutcomeUnknown):
                self.backend.replace(key, data, etag)
                return True
        logger.warning("could not advance %s to %s; readers find the version by probing", key, version.ref)
        return False

    def repair_latest(self, key: str, head: Version) -> bool:
        """Point a broken ``latest.json`` at ``head`` (``fsck --repair``), never backwards: a hint a writer
        has meanwhile made good (the record of a version, at or past ``head``) is left as it is."""
        try:
            raw, etag = self.backend.get(key)
        except KeyMissing:
            return False
        with contextlib.suppress(IntegrityError, KeyMissing):
            current = self.parse(key, raw, Latest)
            if current.number >= head.number and self.record(head.dataset, current.number) == current.version:
                return False  # a writer made it good meanwhile
        data = Latest(format=head.format, number=head.number, version=head).model_dump_json().encode()
        try:
            self.backend.replace(key, data, etag)
        except (PreconditionFailed, OutcomeUnknown):
            return False  # a writer moved it meanwhile; the next fsck judges the new one
        return True

    # ------------------------------------------------------------------ lineage edges

    def consumers(self, dataset: str, number: int) -> list[tuple[str, int]]:
        """``(dataset, number)`` of every version whose reverse edge says it was made from ``dataset@number``:
        one LIST of one prefix, sorted. Edges are hints: :meth:`made_from` says whether one holds."""
        found = []
        for key in self.backend.list(layout.used_by_prefix(dataset, number)):
            parsed = layout.parse_used_by_key(key)
            if parsed and parsed[:2] == (dataset, number):
                found.append(parsed[2:])
        return sorted(found)

    def records_at(
        self, refs: Collection[tuple[str, int]]
    ) -> tuple[dict[tuple[str, int], Version | Dropped | None], set[tuple[str, int]]]:
        """The records of many versions of any datasets, read in parallel (``None`` for one that does not
        exist or cannot be read), and those that cannot be read (each a warning)."""
        keys = {layout.version_key(name, number): (name, number) for name, number in refs}
        found: dict[tuple[str, int], Version | Dropped | None] = {}
        unreadable: set[tuple[str, int]] = set()
        raw = self._read_many(list(keys)) if keys else {}
        for key, (name, number) in keys.items():
            data = raw.get(key)
            found[(name, number)] = None
            if data is not None:
                try:
                    found[(name, number)] = self.version_record(key, data, name, number)
                except IntegrityError as exc:
                    logger.warning("skipped %s@%d: %s", name, number, exc)
                    unreadable.add((name, number))
        return found, unreadable

    def present(self, keys: Collection[str]) -> set[str]:
        """Which of ``keys`` exist now (read in parallel)."""
        raw = self._read_many(list(keys)) if keys else {}
        return {key for key in keys if raw.get(key) is not None}

    def same_store(self, store: str | None) -> bool:
        """Whether an input's ``store`` names this store (``None``: the store of the version naming it)."""
        return store is None or store.rstrip("/") == self.url.rstrip("/")

    def made_from(self, record: Version | Dropped, dataset: str, number: int) -> bool:
        """Whether ``record`` names ``dataset@number`` of this store among its inputs."""
        return any(i.dataset == dataset and i.number == number and self.same_store(i.store) for i in record.inputs)

    def edge_keys(self, version: Version | Dropped) -> list[str]:
        """The keys of the reverse edges of ``version``: one per input in this store."""
        return sorted(
            {
                layout.used_by_key(i.dataset, i.number, version.dataset, version.number)
                for i in version.inputs
                if self.same_store(i.store)
            }
        )

    def write_edges(self, version: Version | Dropped) -> int:
        """Create the reverse edge of each input of ``version`` that is in this store (create-only: one
        that is there already is left as it is); how many were written. ``GitfreeError`` if one could not be."""
        written = 0
        for key in self.edge_keys(version):
            parsed = layout.parse_used_by_key(key)
            assert parsed is not None  # noqa: S101 - built by layout.used_by_key just above
            edge = UsedBy(
                input=parsed[0],
                input_number=parsed[1],
                dataset=version.dataset,
                number=version.number,
                id=version.id,
                created_at=version.created_at,
            )
            for attempt in range(3):
                try:
                    self.create(key, edge)
                    written += 1
                except KeyExists:  # there already (a retry, or reindex)
                    pass
                except OutcomeUnknown:
                    if attempt < 2:
                        continue
                    raise
                break
        return written

    # ------------------------------------------------------------------ the marker

    def ensure_writable(self) -> None:
        """Once per process and store: prove conditional writes work and the format is ours; make a new
        store's ``gitfree.json``."""
        key = (self.url, getattr(self.backend, "endpoint", None))
        with _probed_lock:
            if key in _probed:
                return
        try:
            marker: StoreMarker | None = self.read(layout.MARKER, StoreMarker)
        except KeyMissing:
            marker = None
            self._refuse_other_data()
        if marker is not None and marker.format != 1:
            raise IntegrityError(
                f"{self.url} is a gitfree store of format {marker.format}; upgrade gitfree to write to it"
            )
        self.backend.probe_conditional_writes()
        if marker is None:
            new = StoreMarker(format=1, created_at=utcnow(), created_by=f"gitfree {_version()}")
            with contextlib.suppress(KeyExists):
                self.create(layout.MARKER, new)
        with _probed_lock:
            _probed.add(key)

    def _refuse_other_data(self) -> None:
        """A place with no ``gitfree.json`` becomes a store only if it is empty or holds nothing but
        gitfree's and DVC's layout (an existing DVC remote may become a store): never a data folder."""
        for seen, key in enumerate(self.backend.list("")):
            if not layout.is_store_key(key):
                raise ConfigError(
                    f"{self.url} holds other data (e.g. {key!r}) and is not a gitfree store (it has no "
                    f"{layout.MARKER}); gitfree writes only to an empty directory or prefix, or to an existing store. "
                    "Check the --store / GITFREE_STORE setting"
                )
            if seen > 10_000:
                return

    # ------------------------------------------------------------------ the whole catalog

    def inventory(self, datasets: Iterable[str] = (), *, journals: bool = True) -> Inventory:
        """Every record, tombstone and tag (of ``datasets``, default all) and the upload journals, read in
        parallel. Nothing that cannot be read is skipped silently: it is in the entry's ``unreadable``
        or ``bad_tags``."""
        entries: dict[str, Entry] = defaultdict(Entry)
        edges: dict[str, tuple[str, int, str, int]] = {}
        records, tag_keys = self._scan(set(datasets), entries, edges)
        uploads = {}
        if journals:
            uploads = {k: lease for k in self.backend.list(layout.UPLOADS) if (lease := layout.parse_upload_key(k))}
        raw = self._read_many([*records, *tag_keys, *uploads])
        for key, (name, number) in records.items():
            if (data := raw.get(key)) is not None:  # else removed since the listing
                self._add_record(entries[name], key, data, name, number)
        for key, (name, tag) in tag_keys.items():
            if (data := raw.get(key)) is not None:
                self._add_tag(entries[name], key, data, tag)
        found = Inventory(dict(entries), edges=edges)
        for key, lease in uploads.items():
            if (data := raw.get(key)) is not None:
                found.journals[key] = (lease, self._journal(key, data))
        return found

    def _scan(
        self, wanted: set[str], entries: dict[str, Entry], edges: dict[str, tuple[str, int, str, int]]
    ) -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, str]]]:
        """One listing of ``datasets/``: the record keys and tag keys (of ``wanted``, default all), with
        each record's server time and each dataset's ``latest.json`` noted in ``entries``, and the reverse
        lineage edges from or to ``wanted`` in ``edges``."""
        records: dict[str, tuple[str, int]] = {}
        tag_keys: dict[str, tuple[str, str]] = {}
        for info in self.backend.scan(layout.DATASETS):
            if parsed := layout.parse_version_key(info.key):
                if not wanted or parsed[0] in wanted:
                    records[info.key] = parsed
                    entries[parsed[0]].written[parsed[1]] = info.modified
            elif named := layout.parse_tag_key(info.key):
                if not wanted or named[0] in wanted:
                    tag_keys[info.key] = named
            elif (name := layout.parse_latest_key(info.key)) is not None and (not wanted or name in wanted):
                entries[name].latest = info.key
            elif (edge := layout.parse_used_by_key(info.key)) and (not wanted or {edge[0], edge[2]} & wanted):
                edges[info.key] = edge
        return records, tag_keys

    def _add_record(self, entry: Entry, key: str, data: bytes, name: str, number: int) -> None:
        try:
            record = self.version_record(key, data, name, number)
        except IntegrityError as exc:
            entry.unreadable[number] = (data, str(exc))
            return
        if isinstance(record, Dropped):
            entry.dropped[number] = record
        else:
            entry.versions[number] = record

    def _add_tag(self, entry: Entry, key: str, data: bytes, name: str) -> None:
        try:
            tag = self.parse(key, data, Tag)
        except IntegrityError as exc:
            entry.bad_tags[key] = str(exc)
            return
        if layout.tag_key(tag.dataset, tag.tag) != key or tag.tag != name:
            entry.bad_tags[key] = f"the record names the tag {tag.ref}"
            return
        if tag.deleted:  # the marker of a deleted tag: no root, no version to check
            return
        entry.tags.append(tag)

    def _journal(self, key: str, data: bytes) -> set[str]:
        try:
            return set(Uploads.model_validate_json(data).objects)
        except ValueError:
            logger.warning("the upload journal %s cannot be read; the objects it names count as foreign", key)
            return set()

    # ------------------------------------------------------------------ versioned steps

    def step_made(self, step_key: str, dataset: str) -> tuple[Version | None, bool]:
        """The newest version of ``dataset`` the step with this key made that is still a version, and whether
        a worker's claim to run it is there: one LIST of the step's prefix, then one read per result tried
        (newest first; one GC dropped since, or whose record cannot be read, is passed over)."""
        numbers, claimed = [], False
        for key in self.backend.list(layout.step_prefix(step_key)):
            parsed = layout.parse_step_result_key(key)
            if parsed is not None and parsed[0] == step_key and parsed[1] == dataset:
                numbers.append(parsed[2])
            elif layout.parse_step_claim_key(key) == step_key:
                claimed = True
        for number in sorted(numbers, reverse=True):
            try:
                version = self.version(dataset, number)
            except KeyMissing:  # dropped by GC since (a tombstone), or removed
                continue
            except IntegrityError as exc:
                logger.warning("passed over %s@%d made by a step: %s", dataset, number, exc)
                continue
            if made_by(version) == step_key:
                return version, claimed
            # A note no step run wrote (its version records another key): believing it would skip the step.
            note = layout.step_result_key(step_key, version.dataset, version.number)
            logger.warning("passed over the note %s: %s was not made by that step", note, version.ref)
        return None, claimed

    def step_notes(self) -> dict[str, tuple[str, str, int]]:
        """Every step note in the store: key → (step key, dataset, number) (for fsck and GC)."""
        notes = {}
        for key in self.backend.list(layout.STEPS):
            parsed = layout.parse_step_result_key(key)
            if parsed is not None:
                notes[key] = parsed
        return notes

    def note_step(self, run: StepRun) -> None:
        """Create the result ``run`` of a step, create-only; one already there (the same step found the same
        version up to date again, or a retry whose first answer was lost) is left as it is."""
        key = layout.step_result_key(run.key, run.dataset, run.number)
        for _ in range(3):
            try:
                self.create(key, run)
                return
            except KeyExists:
                return
            except OutcomeUnknown:
                continue
        raise OutcomeUnknown(key)

    def step_runs(self, step_key: str) -> list[StepRun]:
        """Every readable result of the step with this key, oldest version first (one unreadable is skipped
        with a warning)."""
        keys = [k for k in self.backend.list(layout.step_prefix(step_key)) if layout.parse_step_result_key(k)]
        runs = []
        for key, data in sorted(self._read_many(keys).items()):
            if data is None:  # removed since the listing (by garbage collection)
                continue
            try:
                runs.append(self.parse(key, data, StepRun))
            except IntegrityError as exc:
                logger.warning("skipped the step result %s: %s", key, exc)
        return sorted(runs, key=lambda run: run.number)

    # ------------------------------------------------------------------ run notes

    def note_use(self, note: RunNote) -> bool:
        """Create ``note`` at its key, create-only: false when the run had noted that version already (a
        second pull of it, a retried task), which leaves the first note as it is. A lost answer is settled
        by creating again (the key is there if the first one landed)."""
        key = layout.run_use_key(note.run, note.dataset, note.number)
        for _ in range(3):
            try:
                self.create(key, note)
                return True
            except KeyExists:
                return False
            except OutcomeUnknown:
                continue
        raise OutcomeUnknown(key)

    def used_in(self, run: str) -> list[RunNote]:
        """The notes of ``run`` whose version is still the one pulled (or its tombstone), by dataset and number.

        One LIST of the run's prefix, then the notes and the records they name in one parallel read. A note
        that cannot be read, that names another run or version than its key, or whose version's record is
        missing, unreadable or another version (a store made anew at the same URL) is skipped with a warning:
        one bad note never blocks a commit, and no note makes an input of a version it did not see.
        """
        prefix = layout.run_prefix(run)
        named: dict[str, tuple[str, int]] = {}
        for key in self.backend.list(prefix):
            parsed = layout.parse_run_use_key(key)
            if parsed is not None and key.startswith(prefix):
                named[key] = (parsed[1], parsed[2])
        records = {key: layout.version_key(name, number) for key, (name, number) in named.items()}
        raw = self._read_many(sorted({*named, *records.values()}))
        notes = []
        for key, (name, number) in sorted(named.items(), key=lambda item: item[1]):
            data = raw.get(key)
            if data is None:  # removed since the listing (an expired note, by garbage collection)
                continue
            note = self._checked_note(key, data, run, (name, number), raw.get(records[key]))
            if note is not None:
                notes.append(note)
        return notes

    def _checked_note(
        self, key: str, data: bytes, run: str, named: tuple[str, int], record: bytes | None
    ) -> RunNote | None:
        """The note at ``key`` if it is the one its key names and its version is still the one it saw."""
        try:
            note = self.parse(key, data, RunNote)
        except IntegrityError as exc:
            logger.warning("skipped the run note %s: %s", key, exc)
            return None
        if (note.run, note.dataset, note.number) != (run, *named):
            logger.warning("skipped the run note %s: it names %s in the run %r", key, note.ref, note.run)
            return None
        version_key = layout.version_key(*named)
        try:
            if record is None:
                raise IntegrityError(f"the record {version_key} is missing")
            found = self.version_record(version_key, record, *named)
        except IntegrityError as exc:
            logger.warning("skipped the run note %s: %s", key, exc)
            return None
        if found.id != note.version_id:
            logger.warning(
                "skipped the run note %s: %s is another version (id %s) than the one pulled in the run (id %s)",
                key,
                note.ref,
                found.id,
                note.version_id,
            )
            return None
        if isinstance(found, Dropped):
            logger.info(
                "%s, used in the run %r, was dropped by garbage collection since; still its input", note.ref, run
            )
        return note


def parse_lease(raw: bytes, key: str, url: str) -> Lease | None:
    """A lease record (a commit's lease, the GC lock, a step's claim) from its bytes; ``None`` when it is not
    one. The coordinator (:func:`.leases.read`) counts such a record as expired: it blocks nobody for ever.

    Raises:
        IntegrityError: the record says it is of a newer format than this gitfree's: a newer gitfree holds it,
            and only that gitfree can judge it, so nothing may take it over or remove it.
    """
    try:
        return Lease.model_validate_json(raw)
    except ValueError:
        pass
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if (fmt := _newer_format(data)) is not None:
        raise IntegrityError(
            f"the lease {key} in {url} has format {fmt}: a newer gitfree is working on this store; upgrade gitfree "
            "on this worker (nothing was changed)"
        )
    return None


def _newer_format(data: object, newest: int = FORMAT) -> int | None:
    """The ``format`` a parsed record names when it is newer than ``newest``, the newest this gitfree reads of
    that kind of record (``None`` otherwise). A gitfree before references called it with 1 for every record."""
    fmt = data.get("format") if isinstance(data, dict) else None
    return fmt if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > newest else None


def made_by(version: Version) -> str | None:
    """The key of the versioned step that made ``version`` (from its metadata), if a step made it."""
    step = version.metadata.get("step")
    key = step.get("key") if isinstance(step, dict) else None
    return key if isinstance(key, str) else None


def _version() -> str:
    try:
        return metadata.version("gitfree")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def span(numbers: Sequence[int]) -> str:
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
