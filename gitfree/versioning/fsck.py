"""``fsck``: prove that every version's objects are in the store and hash right; repair from the worker cache.

Over the catalog and the objects (never the :class:`.Store`), in named phases, in this order (docs/design.md,
"fsck"): **versions** (every record parses and is the one its key says), **objects** (each directory
version's listing is read and hashed, then one listing of ``files/md5/`` answers existence for all
versions at once; content is checked by the ETag where the server gives the md5 of the content, as S3
does for single-part uploads, and by downloading and hashing with ``deep=True``, also for the file backend
and multipart uploads; a version by reference needs its table, and its source to still hold what it committed:
one HEAD or ``stat`` per source object, with ``deep=True`` a pinned read re-hashing it), **tags** (each
names an existing version), **latest** (each hint is a version's record), **leases** (stale ones
counted; live ones are commits in flight), **edges** (every version's reverse lineage edges are there,
but for a commit still in flight, and every edge holds), **steps** (each step note names a version its
step made; a whole-store fsck only) and **repair**: ``repair=True``
re-uploads missing or damaged objects that the worker cache holds with the right hash (files before
listings, as a commit does), points a broken ``latest.json`` at the head, writes missing edges and removes
those that do not hold, and removes orphan step notes.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import layout, lineage
from .backends import KeyMissing, ObjectInfo
from .catalog import Catalog, Inventory, made_by
from .errors import ConfigError, GitfreeError, IntegrityError, UnsafePathError
from .leases import Coordinator
from .models import Dropped, FileEntry, FsckReport, Latest, Problem, ReferenceEntry, References, Version
from .objects import ListingError, Objects
from .refs import validate_dataset_name
from .sources import Source
from .tree import validate_entries

__all__ = ["check", "run"]

logger = logging.getLogger("gitfree")

_HASH_JOBS = 16
"""Objects downloaded and hashed at once with ``deep=True`` (each may be large)."""
_SOURCE_JOBS = 32
"""Source objects of versions by reference looked at (HEAD, ``stat``; with ``deep=True`` read) at once."""

SourceOpener = Callable[[References], Source]
"""The source at a URL (a version's ``reference.source``), with the store's settings."""


@dataclass
class _Found:
    problems: list[Problem] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    needs: dict[str, list[Version]] = field(default_factory=lambda: defaultdict(list))
    """oid -> the versions that reference it."""
    bytes_hashed: int = 0
    unverified: int = 0
    by_reference: list[tuple[Version, list[FileEntry]]] = field(default_factory=list)
    """Versions by reference whose listing is sound, and its entries: :func:`_references` checks their sources."""
    stored: set[str] = field(default_factory=set)
    """The oids in ``files/md5/`` (one listing)."""
    notes: list[Problem] = field(default_factory=list)
    sources_checked: int = 0


def run(
    catalog: Catalog,
    objects: Objects,
    coordinator: Coordinator,
    *,
    deep: bool,
    repair: bool,
    datasets: Iterable[str],
    sources: SourceOpener | None = None,
) -> FsckReport:
    """See :meth:`.Store.fsck`: :func:`check`, and after a repair a second pass, so the report says what the
    repair fixed and what is left broken."""
    parts = (catalog, objects, coordinator)
    report = check(*parts, deep=deep, repair=repair, datasets=datasets, sources=sources)
    if repair and any(p.repaired for p in report.problems):
        again = check(*parts, deep=deep, repair=True, datasets=datasets, sources=sources)
        fixed = [p for p in report.problems if p.repaired]
        report = again.model_copy(update={"problems": fixed + [p for p in again.problems if p not in fixed]})
    return report


def check(
    catalog: Catalog,
    objects: Objects,
    coordinator: Coordinator,
    *,
    deep: bool = False,
    repair: bool = False,
    datasets: Iterable[str] = (),
    sources: SourceOpener | None = None,
) -> FsckReport:
    """One pass of :func:`run` (``sources`` opens the sources of versions by reference; without it they are
    not checked)."""
    inventory = _inventory(catalog, set(datasets))
    found = _Found()
    _versions(inventory, found)
    _objects(objects, found, deep)
    if sources is not None:
        _references(catalog, found, sources, deep)  # still phase **objects**: the files of versions by reference
    _tags(inventory, found)
    heads = _latest(catalog, inventory, found)
    live, dead = coordinator.scan()  # phase **leases**, before the edges: a live one is a commit in flight
    _edges(catalog, inventory, found, {(lease.dataset, lease.pointer) for lease in live})
    if not datasets:
        _steps(catalog, inventory, found)
    stale = len(dead)
    problems = found.problems
    if repair and problems:
        problems = _repair(catalog, objects, problems, heads)
    report = FsckReport(
        datasets=sum(1 for e in inventory.datasets.values() if e.versions or e.dropped or e.unreadable),
        versions=len(found.versions) + sum(len(e.unreadable) for e in inventory.datasets.values()),
        dropped=sum(len(e.dropped) for e in inventory.datasets.values()),
        tags=sum(len(e.tags) + len(e.bad_tags) for e in inventory.datasets.values()),
        objects=len(found.needs),
        bytes_hashed=found.bytes_hashed,
        unverified=found.unverified,
        stale_leases=stale,
        problems=sorted(problems, key=lambda p: (p.dataset or "", p.number or 0, p.kind, p.key)),
        notes=sorted(found.notes, key=lambda p: (p.dataset or "", p.number or 0, p.kind, p.key)),
        sources=found.sources_checked,
    )
    logger.info("fsck: %d version(s), %d object(s), %d problem(s)", report.versions, report.objects, len(problems))
    return report


def _inventory(catalog: Catalog, wanted: set[str]) -> Inventory:
    """The catalog (of ``wanted``); a name in ``wanted`` with no record is a typo, not "no problems"."""
    inventory = catalog.inventory(wanted, journals=False)
    with_records = {n for n, e in inventory.datasets.items() if e.versions or e.dropped or e.unreadable}
    unknown = sorted(wanted - with_records)
    if unknown:
        for name in unknown:
            validate_dataset_name(name)
        raise catalog.not_found_dataset(unknown[0])
    return inventory


def _versions(inventory: Inventory, found: _Found) -> None:
    """Phase **versions**: every record parses and is the version its key names."""
    for name, entry in inventory.datasets.items():
        for number, (_, why) in sorted(entry.unreadable.items()):
            key = layout.version_key(name, number)
            found.problems.append(Problem(kind="bad_record", key=key, detail=why, dataset=name, number=number))
        found.versions.extend(v for _, v in sorted(entry.versions.items()))


def _objects(objects: Objects, found: _Found, deep: bool) -> None:
    """Phase **objects**: each version's listing, then every object any version needs, judged once."""
    for version in found.versions:
        out = version.pointer.out
        if not out.is_dir:
            found.needs[out.md5].append(version)
            continue
        try:
            entries = objects.listing(out.md5, from_store=True)
            validate_entries(entries)
        except ListingError as exc:
            found.problems.append(_problem(exc.kind, layout.object_key(out.md5), str(exc), version))
            if exc.kind == "missing_listing" and version.reference is not None:
                found.by_reference.append((version, []))  # its table still says where its files are: checked too
            continue
        except UnsafePathError as exc:
            found.problems.append(_problem("bad_listing", layout.object_key(out.md5), str(exc), version))
            continue
        if version.reference is not None:
            found.by_reference.append((version, entries))  # its files are its source's: judged there (_references)
            continue
        for entry in entries:
            found.needs[entry.md5].append(version)
    stored = objects.scan()
    found.stored = set(stored)
    _materialised(found)
    verdicts = _judge(objects, stored, found, deep)
    for oid, referrers in sorted(found.needs.items()):
        verdict = verdicts.get(oid)
        if verdict is None:
            continue
        detail = "missing from the store" if verdict == "missing_object" else "content does not match its md5"
        found.problems.extend(_problem(verdict, layout.object_key(oid), detail, v) for v in referrers)


def _materialised(found: _Found) -> None:
    """What ``files/md5/`` holds of the versions by reference (materialised) is checked as any object is."""
    for version, files in found.by_reference:
        for entry in files:
            if entry.md5 in found.stored:
                found.needs[entry.md5].append(version)


def _problem(kind: str, key: str, detail: str, version: Version | Dropped) -> Problem:
    return Problem.model_validate(
        {"kind": kind, "key": key, "detail": detail, "dataset": version.dataset, "number": version.number}
    )


def _judge(objects: Objects, stored: dict[str, ObjectInfo], found: _Found, deep: bool) -> dict[str, str | None]:
    """For each needed oid: ``"missing_object"``, ``"hash_mismatch"`` or ``None`` (fine, or unverifiable
    without ``deep``: counted in ``unverified``)."""

    listed = {} if deep or not found.needs else objects.listed_md5s()  # Azure: the Content-MD5 of each blob

    def one(oid: str) -> tuple[str, str | None, int]:
        info = stored.get(oid)
        if info is None:
            return oid, "missing_object", 0
        want = layout.md5_of(oid)
        if not deep and oid in listed:
            return oid, (None if listed[oid] == want else "hash_mismatch"), 0
        if not deep and info.etag and layout.is_md5(info.etag):
            return oid, (None if info.etag == want else "hash_mismatch"), 0
        if not deep:
            return oid, "unverified", 0
        try:
            got, size = objects.backend.md5(info.key)
        except KeyMissing:
            return oid, "missing_object", 0
        return oid, (None if got == want else "hash_mismatch"), size

    verdicts: dict[str, str | None] = {}
    with ThreadPoolExecutor(max_workers=_HASH_JOBS) as pool:
        for oid, verdict, size in pool.map(one, sorted(found.needs)):
            found.bytes_hashed += size
            if verdict == "unverified":
                found.unverified += 1
                verdict = None
            verdicts[oid] = verdict
    return verdicts


# A source object as one job looks at it: the source's URL, the path, the VersionId, and with ``deep`` the entry
# (each entry is read and hashed on its own; without it one HEAD or stat answers for every entry of the object).
_Key = tuple[str, str, str | None, ReferenceEntry | None]


@dataclass
class _Look:
    """What one job found of one source object: each entry's difference (``None``: none), or why it could not
    look, and the bytes it read (``deep``)."""

    drift: dict[ReferenceEntry, str | None] = field(default_factory=dict)
    error: GitfreeError | None = None
    size: int = 0


def _references(catalog: Catalog, found: _Found, sources: SourceOpener, deep: bool) -> None:
    """Phase **objects**, for the versions by reference (docs/design.md, "fsck"): each table read once and checked
    against its record (``missing_table``, ``bad_table``); then every source object the tables name looked at once
    (S3: a HEAD, of the recorded VersionId when there is one; a folder's file: a ``stat``), or with ``deep`` read
    pinned as a read is and re-hashed, in a bounded pool. A difference is ``drift`` on each version whose entry it
    is, but a note when ``files/md5/`` holds that file (materialised: reads take the store's copy). A source that
    cannot be looked at is one ``source_unreadable`` line per version. Nothing is written."""
    tables = _read_tables(catalog, found)
    opened = _open_sources({_place(table): table for _, table in tables}, sources)
    groups: dict[_Key, list[ReferenceEntry]] = defaultdict(list)
    for _, table in tables:
        for entry in table.entries:
            members = groups[_source_key(_place(table), entry, deep)]
            if entry not in members:
                members.append(entry)
    looks = _look(opened, groups, deep)
    found.sources_checked += sum(1 for look in looks.values() if look.error is None)
    found.bytes_hashed += sum(look.size for look in looks.values())
    for version, table in tables:
        _drifted(version, table, looks, found, deep)


def _place(table: References) -> str:
    """Where a table's source is: its URL, and the endpoint a table of an ``s3://`` source with options of its own
    records (the same bucket and prefix on another endpoint is another source)."""
    return table.source if table.endpoint is None else f"{table.source} on {table.endpoint}"


def _source_key(url: str, entry: ReferenceEntry, deep: bool) -> _Key:
    return (url, entry.path, entry.version_id, entry if deep else None)


def _read_tables(catalog: Catalog, found: _Found) -> list[tuple[Version, References]]:
    """The table of each version by reference, read once per table (in parallel) and checked against its record."""

    def one(version: Version) -> References | IntegrityError:
        try:
            table = catalog.references(version)[0]
            validate_entries([FileEntry(path=e.path, md5=e.md5) for e in table.entries])  # no look outside its source
            return table
        except UnsafePathError as exc:
            return IntegrityError(str(exc))
        except IntegrityError as exc:
            return exc

    unique = {(v.reference, v.md5): v for v, _ in found.by_reference}
    with ThreadPoolExecutor(max_workers=_HASH_JOBS) as pool:
        read = dict(zip(unique, pool.map(one, unique.values()), strict=True))
    tables = []
    for version, _ in found.by_reference:
        got = read[(version.reference, version.md5)]
        if isinstance(got, References):
            tables.append((version, got))
        elif version.reference is not None:
            key = layout.reference_key(version.reference.table)
            kind = "bad_table" if catalog.backend.exists(key) else "missing_table"
            found.problems.append(_problem(kind, key, str(got), version))
    return tables


def _open_sources(tables: dict[str, References], sources: SourceOpener) -> dict[str, Source | GitfreeError]:
    opened: dict[str, Source | GitfreeError] = {}
    for place in sorted(tables):
        try:
            opened[place] = sources(tables[place])
        except GitfreeError as exc:  # a forged or foreign source URL, an S3 client that cannot be set up
            opened[place] = exc
    return opened


def _look(
    opened: dict[str, Source | GitfreeError], groups: dict[_Key, list[ReferenceEntry]], deep: bool
) -> dict[_Key, _Look]:
    """Look at every source object of ``groups``, each source's first one before the rest: a source that cannot be
    looked at (``ConfigError``: credentials, a folder gone) costs that one request, not one per object."""

    def one(key: _Key) -> _Look:
        source, entries = opened[key[0]], groups[key]
        if isinstance(source, GitfreeError):
            return _Look(error=source)
        try:
            if deep:
                what, size = source.rehash(entries[0])
                return _Look({entries[0]: what}, size=size)
            return _Look(dict(zip(entries, source.drift(entries), strict=True)))
        except GitfreeError as exc:
            return _Look(error=exc)

    firsts: dict[str, _Key] = {}
    for key in groups:
        firsts.setdefault(key[0], key)
    with ThreadPoolExecutor(max_workers=_SOURCE_JOBS) as pool:
        looks = dict(zip(firsts.values(), pool.map(one, firsts.values()), strict=True))
        dead = {key[0]: look.error for key, look in looks.items() if isinstance(look.error, ConfigError)}
        rest = [key for key in groups if key not in looks and key[0] not in dead]
        looks.update(zip(rest, pool.map(one, rest), strict=True))
    looks.update({key: _Look(error=dead[key[0]]) for key in groups if key not in looks})
    return looks


def _drifted(version: Version, table: References, looks: dict[_Key, _Look], found: _Found, deep: bool) -> None:
    """The drift of one version by reference: a problem per entry that differs, a note where ``files/md5/`` holds
    the file; and one line for the entries that could not be looked at."""
    failed: list[tuple[ReferenceEntry, GitfreeError]] = []
    for entry in table.entries:
        look = looks[_source_key(_place(table), entry, deep)]
        if look.error is not None:
            failed.append((entry, look.error))
            continue
        what = look.drift.get(entry)
        if what is None:
            continue
        if entry.md5 in found.stored:
            note = f"{what}; the store's copy ({layout.object_key(entry.md5)}) is read instead: materialised"
            found.notes.append(_problem("drift", f"{table.source}{entry.path}", note, version))
        else:
            found.problems.append(_problem("drift", f"{table.source}{entry.path}", what, version))
    if failed:
        entry, error = failed[0]
        if len(failed) == len(table.entries):
            detail = f"cannot look at its source: {str(error).splitlines()[0]}"
        else:
            detail = f"could not look at {len(failed)} of its {len(table.entries)} files (e.g. {entry.path}: {error})"
        stored = all(e.md5 in found.stored for e, _ in failed)
        (found.notes if stored else found.problems).append(_problem("source_unreadable", table.source, detail, version))


def _tags(inventory: Inventory, found: _Found) -> None:
    """Phase **tags**: each tag reads, and names a version that exists (or one whose record is broken)."""
    present = {(v.dataset, v.number) for v in found.versions}
    present |= {(p.dataset, p.number) for p in found.problems if p.dataset and p.number}
    for entry in inventory.datasets.values():
        found.problems.extend(Problem(kind="bad_record", key=key, detail=why) for key, why in entry.bad_tags.items())
        for tag in entry.tags:
            if (tag.dataset, tag.number) in present:
                continue
            gone = "was dropped by garbage collection" if tag.number in entry.dropped else "does not exist"
            found.problems.append(
                Problem(
                    kind="dangling_tag",
                    key=layout.tag_key(tag.dataset, tag.tag),
                    detail=f"tag {tag.ref} points at version {tag.number}, which {gone}",
                    dataset=tag.dataset,
                    number=tag.number,
                )
            )


def _latest(catalog: Catalog, inventory: Inventory, found: _Found) -> dict[str, int]:
    """Phase **latest**: each ``latest.json`` is the record of a version, not past the head. Returns the heads."""
    heads: dict[str, int] = {}
    for version in found.versions:
        heads[version.dataset] = max(heads.get(version.dataset, 0), version.number)
    for dataset, entry in sorted(inventory.datasets.items()):
        if entry.latest is None:
            continue
        try:
            latest = catalog.read(entry.latest, Latest)
            if latest.number in entry.unreadable and latest.version.dataset == dataset:
                # The record is broken (reported as bad_record); the hint may hold the only intact copy of
                # it, so it is neither judged nor repaired.
                continue
            # The record at its number is read now: a version committed after the inventory (its hint past the
            # head fsck saw) is a good hint, not a bad one; a number with no record is a bad one.
            ok = latest.version.dataset == dataset and catalog.version(dataset, latest.number).id == latest.version.id
            if ok and latest.number > heads.get(dataset, 0):
                heads[dataset] = latest.number
        except (IntegrityError, KeyMissing):
            ok = False
        if not ok:
            found.problems.append(
                Problem(
                    kind="bad_latest",
                    key=entry.latest,
                    detail="latest.json does not match a version record",
                    dataset=dataset,
                )
            )
    return heads


def _edges(
    catalog: Catalog, inventory: Inventory, found: _Found, in_flight: set[tuple[str | None, str | None]]
) -> None:
    """Phase **edges**: each version's reverse lineage edges are there; each edge names a version made from
    its input (problems are the consumer's). The edges of a version whose commit still holds its lease
    (``in_flight``: dataset and output md5) are being written: not a problem."""
    missing, orphans, _ = lineage.edge_problems(catalog, inventory)
    missing = {
        key: record
        for key, record in missing.items()
        if isinstance(record, Dropped) or (record.dataset, record.md5) not in in_flight
    }
    for key, version in sorted(missing.items()):
        detail = f"{version.ref} is not recorded among the consumers of its input (`gitfree reindex` records it)"
        found.problems.append(_problem("missing_edge", key, detail, version))
    for key in orphans:
        parsed = layout.parse_used_by_key(key)
        assert parsed is not None  # noqa: S101 - edge keys come from the listing's parse
        name, number, consumer, consumer_number = parsed
        detail = (
            f"the edge says {consumer}@{consumer_number} was made from {name}@{number}, and it was not (dropped, "
            "missing, or made from other inputs)"
        )
        found.problems.append(
            Problem(kind="orphan_edge", key=key, detail=detail, dataset=consumer, number=consumer_number)
        )


def _steps(catalog: Catalog, inventory: Inventory, found: _Found) -> None:
    """Phase **steps**: each step note names a version (or the tombstone GC left of one) that the step with
    its key made, by the version's own record. A note naming no record, or a version another step (or no step)
    made, would make that step return a version it did not make; the step passes over it, fsck reports it
    and ``--repair`` removes it. A note of a dropped version is GC's to remove, not a problem."""
    for key, (step_key, name, number) in sorted(catalog.step_notes().items()):
        entry = inventory.datasets.get(name)
        version = entry.versions.get(number) if entry is not None else None
        if entry is not None and (number in entry.dropped or number in entry.unreadable):
            continue
        if version is None:  # committed after the inventory was taken, its note since: read it now
            with contextlib.suppress(KeyMissing, IntegrityError):
                version = catalog.version(name, number)
        if version is None:
            detail = f"the step note names {name}@{number}, which has no record"
        elif made_by(version) != step_key:
            detail = f"the step note says a step made {version.ref}, and its record names another step key"
        else:
            continue
        found.problems.append(Problem(kind="orphan_step", key=key, detail=detail, dataset=name, number=number))


def _repair_edges(catalog: Catalog, problems: list[Problem]) -> set[str]:
    """Write the missing edges and remove the orphans fsck found; the keys fixed."""
    fixed: set[str] = set()
    for problem in problems:
        if problem.kind == "missing_edge" and problem.dataset and problem.number:
            try:
                catalog.write_edges(catalog.record(problem.dataset, problem.number))
                catalog.backend.get(problem.key)
                fixed.add(problem.key)
            except (KeyMissing, GitfreeError) as exc:  # dropped or broken meanwhile: judged next time
                logger.warning("fsck: could not write %s: %s", problem.key, exc)
    orphans = [p.key for p in problems if p.kind == "orphan_edge"]
    catalog.backend.delete_many(orphans)
    return fixed | set(orphans)


def _repair_hint(catalog: Catalog, problem: Problem, heads: dict[str, int]) -> bool:
    """Point a bad ``latest.json`` at the head fsck saw, unless that version is gone meanwhile (a GC
    dropped it: the next fsck judges the hint again)."""
    dataset = problem.dataset or ""
    try:
        head = catalog.version(dataset, heads[dataset])
    except (KeyMissing, IntegrityError):
        return False
    return catalog.repair_latest(problem.key, head)


def _repair(catalog: Catalog, objects: Objects, problems: list[Problem], heads: dict[str, int]) -> list[Problem]:
    """Re-upload what the worker cache holds intact (files first, then listings); fix latest.json."""
    catalog.ensure_writable()
    fixable = {"missing_object", "hash_mismatch", "missing_listing"}
    oids = {oid for p in problems if p.kind in fixable and (oid := layout.parse_object_key(p.key))}
    intact = [oid for oid in oids if objects.intact_in_cache(oid)]
    objects.upload([oid for oid in intact if not layout.is_listing(oid)])  # files before listings
    objects.upload([oid for oid in intact if layout.is_listing(oid)])
    uploaded: set[str] = set()
    for oid in intact:
        if objects.backend.md5(layout.object_key(oid))[0] == layout.md5_of(oid):
            uploaded.add(oid)
            logger.info("fsck: re-uploaded %s from the worker cache", layout.object_key(oid))
    fixed_latest = {
        p.key for p in problems if p.kind == "bad_latest" and p.dataset in heads and _repair_hint(catalog, p, heads)
    }
    fixed_edges = _repair_edges(catalog, problems)
    orphan_steps = [p.key for p in problems if p.kind == "orphan_step"]
    catalog.backend.delete_many(orphan_steps)
    fixed_edges |= set(orphan_steps)
    return [
        p.model_copy(update={"repaired": True})
        if (p.kind in fixable and layout.parse_object_key(p.key) in uploaded)
        or p.key in fixed_latest
        or p.key in fixed_edges
        else p
        for p in problems
    ]
