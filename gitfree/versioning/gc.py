"""Garbage collection: drop the versions the retention policy does not keep, then delete gitfree's objects
that nothing kept references.

Explicit, never automatic (docs/design.md, "Garbage collection"). Mark and sweep, as restic's ``prune`` and
lakeFS's GC do, with the lease protocol of :mod:`.leases`, over the catalog and the objects (never the
:class:`.Store`), in named phases:

1. **Lock**: take ``gc/lock.json`` (create-only; a dead holder's lock is taken over with ``If-Match``),
   renewed while GC runs.
2. **Leases**, strictly after the lock: a live lease names the object its commit will reference; GC
   keeps it and every file its listing names. A lease whose listing is not uploaded yet is waited for
   (its writer saw no lock, so it goes on and uploads). Writers that come later see the lock and wait.
3. **Inventory**, after the leases: every version record, tombstone and tag, and every upload journal
   (:meth:`.Catalog.inventory`), with the server's time of each record.
4. **Policy**: in every dataset the newest version, the last ``keep_last``, those younger than
   ``keep_within`` and every tagged one are kept (no policy: every version). A dataset with a record or
   tag that cannot be read drops nothing.
5. **Mark**: every object the kept versions, live leases and unreadable records may name is a root.
6. **Plan**: an object is *gitfree's* when a version record, a tombstone of a dropped version or an
   upload journal (``uploads/<lease>.json``, written by a commit before it uploads) names it. gitfree's
   objects that are not roots and older than the grace period go; any other object in DVC's layout is
   *foreign* (a DVC project pushing to the same remote) and is only counted, unless ``delete_foreign``. A
   reference table (``references/<md5>.json``) no kept version, unreadable record or live commit lease names
   goes once older than the grace period.
7. **Sweep**: move each affected ``latest.json`` past what is dropped; replace each dropped version's
   record by a tombstone (the number stays taken, so it is never reused, and readers learn when it went),
   then delete the reverse lineage edges nothing kept is reached through; delete file objects, then
   listings (so a GC that dies part way still finds, through the tombstones' listings, what it has left
   to do), checking before each batch that the lock is still ours; then finished upload journals, dead
   leases and day-old probes; then the run notes (``runs/``) older than :data:`RUN_NOTES_KEPT`; then the
   step notes of dropped versions (dead step claims are only counted); then the reference tables planned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import layout, lineage
from .backends import ObjectInfo
from .catalog import Catalog, Inventory
from .errors import ConflictError, InputError, IntegrityError
from .leases import Coordinator, Holder
from .leases import read as read_lease
from .models import Author, Dropped, GcReport, Version, utcnow
from .objects import Objects

__all__ = ["collect"]

logger = logging.getLogger("gitfree")

_BATCH = 500

RUN_NOTES_KEPT = timedelta(days=30)
"""How long a run note (``runs/<run>/<dataset>@<n>.json``) is kept, by the server's time of its write: a
commit uses the notes of its own run, so past any run's length they only take room. Never a GC root."""


@dataclass
class _Policy:
    keep_last: int | None
    keep_within: timedelta | None
    grace: timedelta

    @classmethod
    def checked(
        cls, keep_last: int | None, keep_within: timedelta | None, grace: timedelta | None, default_grace: timedelta
    ) -> _Policy:
        if keep_last is not None and keep_last < 1:
            raise InputError("keep_last must be 1 or more: the newest version of every dataset is always kept")
        if keep_within is not None and keep_within < timedelta(0):
            raise InputError("keep_within must not be negative")
        grace = default_grace if grace is None else grace
        if grace < timedelta(0):
            raise InputError("the grace period must not be negative")
        return cls(keep_last, keep_within, grace)


# ---------------------------------------------------------------------------- 2. leases


@dataclass
class _Leases:
    roots: set[str]
    live: set[str]
    """Ids of the live commit leases."""
    dead: list[str]
    """Keys of dead leases (and of records that are not commit leases)."""
    pointers: set[str] = field(default_factory=set)
    """The outputs the live commit leases name (their listings): a reference table making one is a root."""


def _leases(objects: Objects, coordinator: Coordinator, deadline: float | None) -> _Leases:
    """Objects of live leases, their ids, and the keys of dead ones.

    ``deadline`` ``None`` (a dry run) does not wait for leases whose listing is not uploaded yet.
    """
    while True:
        live, dead = coordinator.scan()
        pending = [
            lease
            for lease in live
            if lease.pointer is None
            or (layout.is_listing(lease.pointer) and not objects.backend.exists(layout.object_key(lease.pointer)))
        ]
        if not pending or deadline is None:
            roots: set[str] = set()
            for lease in live:
                if lease.pointer is not None and lease not in pending:
                    roots |= objects.referenced(lease.pointer)
            pointers = {lease.pointer for lease in live if lease.pointer is not None}
            return _Leases(roots, {str(lease.id) for lease in live}, dead, pointers)
        if time.monotonic() > deadline:
            first = pending[0]
            raise ConflictError(
                f"{len(pending)} commit(s) are still uploading to {objects.url} (e.g. {first.dataset!r} on "
                f"{first.host}, pid {first.pid}, lease renewed until {first.expires_at:%H:%M:%S} UTC); garbage "
                "collection deleted nothing. Run it again when they finish (raise GITFREE_GC_WAIT to wait longer)"
            )
        logger.info("waiting for %d commit(s) in flight to finish uploading", len(pending))
        time.sleep(min(2.0, max(0.05, coordinator.wait / 20)))


# ---------------------------------------------------------------------------- 4. policy


def _kept(inventory: Inventory, policy: _Policy, now: datetime) -> dict[str, set[int]]:
    """The numbers of the versions to keep, per dataset. A dataset with a record or tag that cannot be
    read keeps everything: what the policy would keep is unknown."""
    kept: dict[str, set[int]] = {}
    for name, entry in inventory.datasets.items():
        ordered = sorted(entry.versions)
        if (policy.keep_last is None and policy.keep_within is None) or entry.uncertain or not ordered:
            kept[name] = set(ordered)
            continue
        keep = {ordered[-1]} | ({t.number for t in entry.tags} & set(ordered))
        if policy.keep_last is not None:
            keep |= set(ordered[-policy.keep_last :])
        if policy.keep_within is not None:
            since = _before(now, policy.keep_within)
            keep |= {n for n in entry.versions if entry.written.get(n, now) >= since}
        kept[name] = keep
    return kept


def _dropping(inventory: Inventory, kept: dict[str, set[int]]) -> list[Version]:
    return sorted(
        (v for name, e in inventory.datasets.items() for n, v in e.versions.items() if n not in kept[name]),
        key=lambda v: (v.dataset, v.number),
    )


def _before(moment: datetime, span: timedelta) -> datetime:
    """``moment - span``, or the earliest time there is when ``span`` reaches past it (keep everything)."""
    try:
        return moment - span
    except OverflowError:
        return datetime.min.replace(tzinfo=moment.tzinfo)


# ---------------------------------------------------------------------------- 5. mark


def _mark(objects: Objects, inventory: Inventory, kept: dict[str, set[int]]) -> tuple[set[str], str | None]:
    """Every object the kept versions and unreadable records may name; and why no object may be deleted, if so."""
    outputs = {inventory.datasets[name].versions[n].md5 for name, numbers in kept.items() for n in numbers}
    roots: set[str] = set()
    for oid in sorted(outputs):
        try:
            roots |= objects.referenced(oid)
        except IntegrityError as exc:  # what a broken listing references is unknown
            raise IntegrityError(f"{exc}; garbage collection stopped before deleting anything") from None
    skipped: str | None = None
    for name, entry in sorted(inventory.datasets.items()):
        for number, (raw, _) in sorted(entry.unreadable.items()):
            named, why = _named_by(objects, layout.version_key(name, number), raw)
            roots |= named
            skipped = why or skipped
    return roots, skipped


def _named_by(objects: Objects, key: str, raw: bytes) -> tuple[set[str], str | None]:
    """What an unreadable record may reference: every md5 anywhere in its bytes (a truncated record still
    names its pointer if the pointer made it in), with the files of any listing so named; and, when it
    gives no clue (empty, cut before its pointer, its listing unreadable), why no object at all may be
    deleted this time (versions of other datasets are still dropped)."""
    named = layout.oids_in(raw)
    why = None
    if not named:
        why = (
            f"the record {key} cannot be read and names no object, so what it references is unknown: no object "
            "was deleted. Run `gitfree fsck`, then restore or remove it"
        )
    # A record cut just before a ``.dir`` suffix names the listing's md5 alone: try it as a listing too.
    named |= {layout.listing_oid(m) for m in named if not layout.is_listing(m)}
    roots = set(named)
    for oid in named:
        if layout.is_listing(oid) and (oid.encode() in raw or objects.backend.exists(layout.object_key(oid))):
            try:
                roots |= objects.referenced(oid)
            except IntegrityError:
                why = (
                    f"the record {key} cannot be read and its listing {layout.object_key(oid)} is missing or "
                    "unreadable: no object was deleted. Run `gitfree fsck`"
                )
    return roots, why


# ---------------------------------------------------------------------------- 6. plan


@dataclass
class _Plan:
    doomed: list[ObjectInfo]
    marked: int
    young: set[str]
    foreign: list[ObjectInfo]
    journals_done: list[str]
    edges: list[str]
    """Reverse lineage edges whose consumer is dropped (now or by an earlier GC)."""


def _owned(objects: Objects, inventory: Inventory, dropping: Iterable[Version], present: set[str]) -> set[str]:
    """The objects gitfree wrote that no kept version may need: those of the versions being dropped, of
    earlier tombstones whose listing is still there (a GC that died part way), and of upload journals."""
    owned: set[str] = set()
    outputs = {v.md5 for v in dropping} | {d.md5 for e in inventory.datasets.values() for d in e.dropped.values()}
    for oid in outputs & present:
        owned.add(oid)
        if layout.is_listing(oid):
            try:
                owned |= objects.referenced(oid)
            except IntegrityError:
                logger.warning("gc: the listing %s of a dropped version cannot be read", layout.object_key(oid))
    for _, named in inventory.journals.values():
        owned |= named
    return owned


def _plan(
    objects: Objects,
    inventory: Inventory,
    roots: set[str],
    dropping: Iterable[Version],
    live_leases: set[str],
    cutoff: datetime,
    delete_foreign: bool,
) -> _Plan:
    stored = objects.scan()
    owned = _owned(objects, inventory, dropping, set(stored))
    # Objects a live commit is uploading are its own until its record names them.
    roots = roots.union(*(named for lease, named in inventory.journals.values() if lease in live_leases))
    plan = _Plan([], 0, set(), [], [], [])
    for oid, info in stored.items():
        if oid in roots:
            plan.marked += 1
        elif oid not in owned:
            plan.foreign.append(info)
            if delete_foreign and info.modified <= cutoff:
                plan.doomed.append(info)
        elif info.modified > cutoff:
            plan.young.add(oid)
        else:
            plan.doomed.append(info)
    # A journal of a commit that is over is done with once none of its objects waits for the grace period.
    plan.journals_done = [
        key for key, (lease, named) in inventory.journals.items() if lease not in live_leases and not named & plan.young
    ]
    # File objects before listings: a GC that dies part way still finds the files through the listings.
    plan.doomed.sort(key=lambda info: (layout.is_listing(info.key), info.key))
    return plan


def _kept_references(inventory: Inventory, kept: dict[str, set[int]]) -> list[Version]:
    """The kept versions by reference."""
    return [
        version
        for name, numbers in kept.items()
        for number in numbers
        if (version := inventory.datasets[name].versions.get(number)) is not None and version.reference is not None
    ]


def _spare_sources(url: str, inventory: Inventory, kept: dict[str, set[int]], plan: _Plan) -> int:
    """R2, checked before anything is deleted: a key to delete is an object key of this store (``files/md5/``),
    and no kept version by reference has its source above it (only a source overlapping the store, which the
    commit refuses, or a forged record, can). Such keys are kept, counted and said; returns how many."""
    sources = {version.reference.source for version in _kept_references(inventory, kept) if version.reference}
    base = url.rstrip("/") + "/"
    spared = [
        info
        for info in plan.doomed
        if layout.parse_object_key(info.key) is None or any(f"{base}{info.key}".startswith(s) for s in sources)
    ]
    if spared:
        logger.warning(
            "gc: kept %d objects that lie in the source of a version by reference (e.g. %s%s)",
            len(spared),
            base,
            spared[0].key,
        )
        keys = {info.key for info in spared}
        plan.doomed = [info for info in plan.doomed if info.key not in keys]
    return len(spared)


@dataclass
class _Tables:
    """The reference tables (``references/<md5>.json``) to delete, and those left."""

    doomed: list[str] = field(default_factory=list)
    young: int = 0
    """Tables no kept version names, younger than the grace period."""
    spared: int = 0
    """Tables left because they lie under the source of a kept version by reference (R2)."""


def _tables(
    catalog: Catalog,
    inventory: Inventory,
    kept: dict[str, set[int]],
    in_flight: _Leases,
    cutoff: datetime,
    skipped: str | None,
) -> _Tables:
    """Phase **plan**, for the reference tables. A table is a root when a kept version names it, when the bytes of
    an unreadable record name its md5 (I5), or when the listing it makes is the output a live commit lease names
    (a commit by reference between its table and its record, R5: it may also have found the table there and be
    about to name it); one that cannot be read is kept while any commit is in flight. Every other table is
    gitfree's (nothing else writes under ``references/``) and goes once older than the grace period, as an
    unreferenced object does; keys there that are not tables stay. Nothing goes when the sweep is skipped."""
    kept_versions = _kept_references(inventory, kept)
    roots = {version.reference.table for version in kept_versions if version.reference}
    for entry in inventory.datasets.values():
        for raw, _ in entry.unreadable.values():
            roots |= {layout.md5_of(oid) for oid in layout.oids_in(raw)}
    plan = _Tables()
    candidates: dict[str, str] = {}
    for info in catalog.backend.scan(layout.REFERENCES):
        md5 = layout.parse_reference_key(info.key)
        if md5 is None or md5 in roots:
            continue
        if info.modified > cutoff:
            plan.young += 1
        else:
            candidates[md5] = info.key
    if candidates and in_flight.pointers:
        for md5, listing in catalog.table_listings(candidates).items():
            if listing is None or listing in in_flight.pointers:
                del candidates[md5]
    sources = {version.reference.source for version in kept_versions if version.reference}
    base = catalog.url.rstrip("/") + "/"
    for md5, key in list(candidates.items()):
        if any(f"{base}{key}".startswith(source) for source in sources):
            del candidates[md5]
            plan.spared += 1
    plan.doomed = [] if skipped else sorted(candidates.values())
    return plan


def _dead_edges(catalog: Catalog, inventory: Inventory, dropping: Iterable[Version]) -> list[str]:
    """The reverse edges of dropped versions (now or before) through which no version that exists is reached
    (by the records' inputs or the edges): lineage goes on through a dropped version while something made
    from it is kept. A commit still in flight, made from a version dropped now, has no record yet: its
    dropped input's edge may go, and fsck reports it missing once the record lands (reindex writes it)."""
    gone = {(v.dataset, v.number) for v in dropping}
    gone |= {(name, n) for name, entry in inventory.datasets.items() for n in entry.dropped}
    through = lineage.reached_through(catalog, inventory, gone)
    return sorted(key for key, edge in inventory.edges.items() if edge[2:] in gone and edge[2:] not in through)


# ---------------------------------------------------------------------------- 7. sweep


def _sweep(
    catalog: Catalog,
    holder: Holder,
    inventory: Inventory,
    kept: dict[str, set[int]],
    dropping: list[Version],
    plan: _Plan,
    in_flight: _Leases,
    started: datetime,
    skipped: str | None,
) -> None:
    # Readers find the head from latest.json by probing forward; a hint left pointing at a dropped
    # record would send them back (and writers would step over tombstones).
    for name in sorted({v.dataset for v in dropping}):
        newest = inventory.datasets[name].versions[max(kept[name])]
        if not catalog.advance_latest(newest):
            raise ConflictError(
                f"could not move the latest.json of {name!r} past the versions to drop; garbage "
                "collection deleted nothing. Run it again"
            )
    _tombstones(catalog, holder, dropping, utcnow())
    _delete(catalog, holder, plan.edges)  # after the tombstones: a GC that dies between leaves them to the next
    backend = catalog.backend
    if not skipped:
        _delete(catalog, holder, [info.key for info in plan.doomed])
        _delete(catalog, holder, plan.journals_done)
    backend.delete_many(in_flight.dead)
    day_ago = started - timedelta(days=1)
    backend.delete_many(i.key for i in backend.scan(layout.PROBES) if i.modified < day_ago)
    if swept := backend.sweep_temporaries():
        logger.info("gc: removed %d temporary files of writers that were killed", swept)


def _tombstones(catalog: Catalog, holder: Holder, dropping: list[Version], now: datetime) -> None:
    by = Author.current()
    for start in range(0, len(dropping), _BATCH):
        _still_ours(holder)
        for version in dropping[start : start + _BATCH]:
            catalog.bury(
                Dropped(
                    dataset=version.dataset,
                    number=version.number,
                    id=version.id,
                    created_at=version.created_at,
                    md5=version.md5,
                    dropped_at=now,
                    dropped_by=by,
                    inputs=version.inputs,
                )
            )


def _still_ours(holder: Holder) -> None:
    if not holder.valid(margin=holder.ttl / 3):
        raise ConflictError(
            "garbage collection lost its lock (its renewals failed or someone took it over) and stopped "
            "deleting; what it removed was unreferenced. Run it again"
        )


def _delete(catalog: Catalog, holder: Holder, keys: list[str]) -> None:
    for start in range(0, len(keys), _BATCH):
        _still_ours(holder)
        catalog.backend.delete_many(keys[start : start + _BATCH])


def _dead_steps(catalog: Catalog, inventory: Inventory, dropping: Iterable[Version]) -> list[str]:
    """The notes of versioned steps that name a dropped version (now or before): such a step runs again. A
    note of a version GC keeps, or one that names no record at all (fsck reports it), stays."""
    gone = {(v.dataset, v.number) for v in dropping}
    gone |= {(name, n) for name, entry in inventory.datasets.items() for n in entry.dropped}
    return sorted(key for key, parsed in catalog.step_notes().items() if parsed[1:] in gone)


def _dead_claims(catalog: Catalog, coordinator: Coordinator) -> int:
    """How many claims of workers that died running a step there are. GC counts them and removes none: the
    next call of the step takes one over by ``If-Match``, while a removal after a read could remove the claim
    of a worker that took it over in between (the store has no conditional delete), and a second worker
    would then run the same step."""
    dead = 0
    for key in catalog.backend.list(layout.STEPS):
        if layout.parse_step_claim_key(key) is not None:
            found = read_lease(catalog.backend, key)
            dead += found is not None and coordinator.dead(found[0])
    return dead


def _expired_notes(catalog: Catalog, now: datetime) -> list[str]:
    """The run notes written (by the server's clock) more than :data:`RUN_NOTES_KEPT` before ``now``. Only keys
    that are run notes: anything else under ``runs/`` is not known to be gitfree's and stays."""
    cutoff = _before(now, RUN_NOTES_KEPT)
    return sorted(
        info.key
        for info in catalog.backend.scan(layout.RUNS)
        if layout.parse_run_use_key(info.key) is not None and info.modified < cutoff
    )


def _forget_runs(catalog: Catalog, holder: Holder, notes: list[str]) -> None:
    """Delete expired run notes (under the lock, as every deletion of GC), then the folders they leave empty."""
    if notes:
        _delete(catalog, holder, notes)
        catalog.backend.remove_empty_folders(layout.RUNS)


def _forget_steps(catalog: Catalog, holder: Holder, notes: list[str]) -> None:
    """Delete the step notes of dropped versions (after their tombstones), then the folders they leave empty."""
    if notes:
        _delete(catalog, holder, notes)
        catalog.backend.remove_empty_folders(layout.STEPS)


# ---------------------------------------------------------------------------- the whole


def collect(
    catalog: Catalog,
    objects: Objects,
    coordinator: Coordinator,
    *,
    keep_last: int | None,
    keep_within: timedelta | None,
    grace: timedelta | None,
    dry_run: bool,
    delete_foreign: bool = False,
) -> GcReport:
    """See :meth:`.Store.gc`."""
    policy = _Policy.checked(keep_last, keep_within, grace, coordinator.ttl + coordinator.skew)
    holder = None
    if not dry_run:
        catalog.ensure_writable()
        holder = coordinator.take_gc_lock()  # 1. lock
    try:
        started = utcnow()
        in_flight = _leases(objects, coordinator, None if dry_run else time.monotonic() + coordinator.wait)  # 2.
        inventory = catalog.inventory()  # 3. inventory
        for entry in inventory.datasets.values():
            for why in [*(why for _, why in entry.unreadable.values()), *entry.bad_tags.values()]:
                logger.warning("gc: %s; its dataset drops nothing and keeps every object it may name", why)
        kept = _kept(inventory, policy, started)
        dropping = _dropping(inventory, kept)
        roots, skipped = _mark(objects, inventory, kept)
        roots |= in_flight.roots
        plan = _plan(
            objects, inventory, roots, dropping, in_flight.live, _before(started, policy.grace), delete_foreign
        )
        in_sources = _spare_sources(catalog.url, inventory, kept, plan)
        tables = _tables(catalog, inventory, kept, in_flight, _before(started, policy.grace), skipped)
        plan.edges = _dead_edges(catalog, inventory, dropping)
        notes = _expired_notes(catalog, started)
        steps = _dead_steps(catalog, inventory, dropping)
        claims = _dead_claims(catalog, coordinator)
        if holder is not None:
            _sweep(catalog, holder, inventory, kept, dropping, plan, in_flight, started, skipped)
            _forget_runs(catalog, holder, notes)
            _forget_steps(catalog, holder, steps)
            _delete(catalog, holder, tables.doomed)  # after the tombstones: no record names them any more
        if skipped:
            logger.warning("gc: %s", skipped)
        report = _report(dry_run, delete_foreign, inventory, kept, dropping, plan, in_flight, skipped)
        return report.model_copy(
            update={
                "in_sources": in_sources + tables.spared,
                "tables_deleted": tables.doomed,
                "tables_too_young": tables.young,
                "run_notes_removed": len(notes),
                "step_notes_removed": len(steps),
                "step_claims_stale": claims,
            }
        )
    finally:
        if holder is not None:
            holder.release()


def _report(
    dry_run: bool,
    delete_foreign: bool,
    inventory: Inventory,
    kept: dict[str, set[int]],
    dropping: list[Version],
    plan: _Plan,
    in_flight: _Leases,
    skipped: str | None,
) -> GcReport:
    doomed = [] if skipped else plan.doomed
    report = GcReport(
        dry_run=dry_run,
        versions_kept=sum(len(ns) for ns in kept.values()),
        versions_deleted=[v.ref for v in dropping],
        objects_kept=plan.marked,
        objects_deleted=len(doomed),
        bytes_deleted=sum(info.size for info in doomed),
        objects_too_young=len(plan.young),
        leases_live=len(in_flight.live),
        leases_removed=0 if dry_run else len(in_flight.dead),
        leases_stale=len(in_flight.dead),
        deleted=sorted(info.key for info in doomed),
        foreign_objects=len(plan.foreign),
        foreign_bytes=sum(info.size for info in plan.foreign),
        foreign_deleted=delete_foreign and not skipped,
        unreadable_records=inventory.unreadable,
        sweep_skipped=skipped,
        edges_removed=len(plan.edges),
    )
    logger.info(
        "gc%s: %d version(s) and %d object(s) (%d bytes) %s; %d foreign object(s) %s",
        " (dry run)" if dry_run else "",
        len(dropping),
        report.objects_deleted,
        report.bytes_deleted,
        "would go" if dry_run else "removed",
        report.foreign_objects,
        "included" if delete_foreign else "left alone",
    )
    return report
