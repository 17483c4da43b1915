"""Garbage collection: drop the versions the retention policy does not keep, then delete gitfree's objects
that nothing kept references.

Explicit, never automatic (DESIGN.md, "Garbage collection"). Mark and sweep, as restic's ``prune`` and
lakeFS's GC do, with the lease protocol of :mod:`.leases`, in named phases:

1. **Lock**: take ``gc/lock.json`` (create-only; a dead holder's lock is taken over with ``If-Match``),
   renewed while GC runs.
2. **Leases**, strictly after the lock: a live lease names the object its commit will reference; GC
   keeps it and every file its listing names. A lease whose listing is not uploaded yet is waited for
   (its writer saw no lock, so it goes on and uploads). Writers that come later see the lock and wait.
3. **Policy**: read every version record and tag. In every dataset the newest version, the last
   ``keep_last``, those younger than ``keep_within`` and every tagged one are kept (no policy: every
   version). A dataset with a record or tag that cannot be read drops nothing.
4. **Mark**: every object the kept versions, live leases and unreadable records may name is a root.
5. **Plan**: an object is *gitfree's* when a version record, a tombstone of a dropped version or an
   upload journal (``uploads/<lease>.json``, written by a commit before it uploads) names it. gitfree's
   objects that are not roots and older than the grace period go; any other object in DVC's layout is
   *foreign* (a DVC project pushing to the same remote) and is only counted, unless ``delete_foreign``.
6. **Sweep**: replace each dropped version's record by a tombstone (the number stays taken, so it is
   never reused, and readers learn when it went); delete file objects, then listings (so a GC that dies
   part way still finds, through the tombstones' listings, what it has left to do), checking before each
   batch that the lock is still ours; then finished upload journals and dead leases.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import layout, leases
from .backends import KeyExists, ObjectInfo, OutcomeUnknown, PreconditionFailed
from .errors import ConflictError, InputError, IntegrityError
from .models import Author, Dropped, GcReport, Lease, Tag, Uploads, Version, utcnow

if TYPE_CHECKING:
    from .store import Store

__all__ = ["collect", "referenced"]

logger = logging.getLogger("gitfree")

_BATCH = 500
_MD5_IN_TEXT = re.compile(rb"[0-9a-f]{32}(?:\.dir)?")


def referenced(store: Store, oid: str) -> set[str]:
    """Every object a version or lease whose output is ``oid`` references (the listing and its files)."""
    if not oid.endswith(".dir"):
        return {oid}
    objects = {oid}
    for item in store._listing(oid):
        md5 = item.get("md5")
        if not isinstance(md5, str) or not re.fullmatch(r"[0-9a-f]{32}", md5):
            raise IntegrityError(f"the listing {layout.object_key(oid)} has an entry without a valid md5")
        objects.add(md5)
    return objects


# ---------------------------------------------------------------------------- 1. lock


def _take_lock(store: Store, ttl: timedelta, skew: timedelta) -> leases.Holder:
    holder = leases.Holder.new(store.backend, ttl, key=layout.GC_LOCK, kind="gc")
    try:
        holder.create()
        return holder
    except (KeyExists, OutcomeUnknown):
        pass
    found = leases.read(store.backend, layout.GC_LOCK)
    if found is None:  # released meanwhile
        holder.create()
        return holder
    current, etag = found
    if current.id == holder.lease.id:  # our create landed; only its answer was lost
        holder.take_over(etag)
        return holder
    if not leases.is_dead(current, skew):
        raise ConflictError(
            f"another garbage collection holds {store.url} (on {current.host}, pid {current.pid}, since "
            f"{current.created_at:%Y-%m-%d %H:%M:%S} UTC, renewed until {current.expires_at:%H:%M:%S}); "
            "wait for it to finish. A crashed one stops blocking when its lock expires."
        )
    logger.warning("taking over the lock of a garbage collection that died (%s, pid %d)", current.host, current.pid)
    try:
        holder.take_over(etag)
    except PreconditionFailed:
        raise ConflictError("another garbage collection took the lock at the same moment; wait for it") from None
    return holder


# ---------------------------------------------------------------------------- 2. leases


@dataclass
class _Leases:
    roots: set[str]
    live: set[str]
    """Ids of the live commit leases."""
    dead: list[str]
    """Keys of dead leases (and of records that are not commit leases)."""


def _leases(store: Store, skew: timedelta, deadline: float | None) -> _Leases:
    """Objects of live leases, their ids, and the keys of dead ones.

    ``deadline`` ``None`` (a dry run) does not wait for leases whose listing is not uploaded yet.
    """
    while True:
        live: list[Lease] = []
        dead: list[str] = []
        for key in store.backend.list(layout.LEASES):
            found = leases.read(store.backend, key)
            if found is None:
                continue
            lease = found[0]
            if lease.kind != "commit" or leases.is_dead(lease, skew):
                dead.append(key)
            else:
                live.append(lease)
        pending = [
            lease
            for lease in live
            if lease.pointer is None
            or (lease.pointer.endswith(".dir") and not store.backend.exists(layout.object_key(lease.pointer)))
        ]
        if not pending or deadline is None:
            roots: set[str] = set()
            for lease in live:
                if lease.pointer is not None and lease not in pending:
                    roots |= referenced(store, lease.pointer)
            return _Leases(roots, {str(lease.id) for lease in live}, dead)
        if time.monotonic() > deadline:
            first = pending[0]
            raise ConflictError(
                f"{len(pending)} commit(s) are still uploading to {store.url} (e.g. {first.dataset!r} on "
                f"{first.host}, pid {first.pid}, lease renewed until {first.expires_at:%H:%M:%S} UTC); garbage "
                "collection deleted nothing. Run it again when they finish (raise GITFREE_GC_WAIT to wait longer)"
            )
        logger.info("waiting for %d commit(s) in flight to finish uploading", len(pending))
        time.sleep(min(2.0, max(0.05, store.settings.gc_wait / 20)))


# ---------------------------------------------------------------------------- 3. policy


@dataclass
class _Dataset:
    versions: dict[int, Version] = field(default_factory=dict)
    dropped: dict[int, Dropped] = field(default_factory=dict)
    unreadable: dict[int, bytes] = field(default_factory=dict)
    """Records that do not parse, by number: their raw bytes."""
    written: dict[int, datetime] = field(default_factory=dict)
    """The server's time of each record (its clock, not a worker's): what ``keep_within`` measures."""
    tagged: set[int] = field(default_factory=set)
    uncertain: bool = False
    """A record or tag could not be read: what the policy would keep is unknown, so nothing is dropped."""


@dataclass
class _Inventory:
    datasets: dict[str, _Dataset]
    journals: dict[str, tuple[str, set[str]]]
    """Upload journal key -> the lease id and the objects it names."""
    unreadable: list[str]
    """Keys of records and tags that could not be read."""


def _inventory(store: Store) -> _Inventory:
    """Every version record, tombstone and tag of the store, and the upload journals."""
    datasets: dict[str, _Dataset] = defaultdict(_Dataset)
    record_keys: dict[str, tuple[str, int]] = {}
    tag_keys: list[str] = []
    for info in store.backend.scan(layout.DATASETS):
        if parsed := layout.parse_version_key(info.key):
            record_keys[info.key] = parsed
            datasets[parsed[0]].written[parsed[1]] = info.modified
        elif layout.parse_tag_key(info.key):
            tag_keys.append(info.key)
    journal_keys = {
        key: lease for key in store.backend.list(layout.UPLOADS) if (lease := layout.parse_upload_key(key)) is not None
    }
    raw = store._transfer().read_many([*record_keys, *tag_keys, *journal_keys])
    journals: dict[str, tuple[str, set[str]]] = {}
    for key, lease in journal_keys.items():
        data = raw.get(key)
        if data is None:
            continue
        try:
            journals[key] = (lease, set(Uploads.model_validate_json(data).objects))
        except ValueError:
            logger.warning("gc: the upload journal %s cannot be read; the objects it names count as foreign", key)
            journals[key] = (lease, set())
    unreadable: list[str] = []
    for key, (name, number) in record_keys.items():
        data = raw.get(key)
        if data is None:
            continue  # removed since the listing
        entry = datasets[name]
        try:
            record = store._version_record(key, data, name, number)
        except IntegrityError as exc:
            logger.warning("gc: %s; its dataset drops nothing and keeps every object it may name", exc)
            entry.unreadable[number] = data
            entry.uncertain = True
            unreadable.append(key)
            continue
        if isinstance(record, Dropped):
            entry.dropped[number] = record
        else:
            entry.versions[number] = record
    for key in tag_keys:
        data = raw.get(key)
        if data is None:
            continue
        name = (layout.parse_tag_key(key) or ("", ""))[0]
        try:
            tag = store._parse(key, data, Tag)
        except IntegrityError as exc:
            logger.warning("gc: %s; its dataset drops nothing", exc)
            datasets[name].uncertain = True
            unreadable.append(key)
            continue
        datasets[tag.dataset].tagged.add(tag.number)
    return _Inventory(dict(datasets), journals, sorted(unreadable))


def _kept(
    inventory: _Inventory, keep_last: int | None, keep_within: timedelta | None, now: datetime
) -> dict[str, set[int]]:
    """The numbers of the versions to keep, per dataset."""
    kept: dict[str, set[int]] = {}
    for name, entry in inventory.datasets.items():
        ordered = sorted(entry.versions)
        if (keep_last is None and keep_within is None) or entry.uncertain or not ordered:
            kept[name] = set(ordered)
            continue
        keep = {ordered[-1]} | (entry.tagged & set(ordered))
        if keep_last is not None:
            keep |= set(ordered[-keep_last:])
        if keep_within is not None:
            since = _before(now, keep_within)
            keep |= {n for n in entry.versions if entry.written.get(n, now) >= since}
        kept[name] = keep
    return kept


def _before(moment: datetime, span: timedelta) -> datetime:
    """``moment - span``, or the earliest time there is when ``span`` reaches past it (keep everything)."""
    try:
        return moment - span
    except OverflowError:
        return datetime.min.replace(tzinfo=moment.tzinfo)


# ---------------------------------------------------------------------------- 4. mark


def _mark(store: Store, inventory: _Inventory, kept: dict[str, set[int]]) -> tuple[set[str], str | None]:
    """Every object the kept versions and unreadable records may name; and why no object may be deleted, if so.

    What an unreadable record references is unknown, so every md5 that appears anywhere in its bytes is
    kept (a truncated record still names its pointer if the pointer made it in), with the files of any
    listing so named. A record that names none (empty, or cut before its pointer) gives no clue: then no
    object at all is deleted this time (versions of other datasets are still dropped).
    """
    outputs = {inventory.datasets[name].versions[n].md5 for name, numbers in kept.items() for n in numbers if numbers}
    roots: set[str] = set()
    for oid in sorted(outputs):
        try:
            roots |= referenced(store, oid)
        except IntegrityError as exc:  # what a broken listing references is unknown
            raise IntegrityError(f"{exc}; garbage collection stopped before deleting anything") from None
    skipped: str | None = None
    for name, entry in sorted(inventory.datasets.items()):
        for number, raw in sorted(entry.unreadable.items()):
            named = {m.decode() for m in _MD5_IN_TEXT.findall(raw)}
            if not named:
                skipped = (
                    f"the record {layout.version_key(name, number)} cannot be read and names no object, so what it "
                    "references is unknown: no object was deleted. Run `gitfree fsck`, then restore or remove it"
                )
            # A record cut just before a ``.dir`` suffix names the listing's md5 alone: try it as a listing too.
            named |= {f"{m}.dir" for m in named if not m.endswith(".dir")}
            for oid in named:
                roots.add(oid)
                if oid.endswith(".dir") and (oid.encode() in raw or store.backend.exists(layout.object_key(oid))):
                    try:
                        roots |= referenced(store, oid)
                    except IntegrityError:
                        skipped = (
                            f"the record {layout.version_key(name, number)} cannot be read and its listing "
                            f"{layout.object_key(oid)} is missing or unreadable: no object was deleted. Run `gitfree fsck`"
                        )
    return roots, skipped


# ---------------------------------------------------------------------------- 5. plan


@dataclass
class _Plan:
    doomed: list[ObjectInfo]
    marked: int
    young: set[str]
    foreign: list[ObjectInfo]
    journals_done: list[str]


def _owned(store: Store, inventory: _Inventory, dropping: Iterable[Version], present: set[str]) -> set[str]:
    """The objects gitfree wrote that no kept version may need: those of the versions being dropped, of
    earlier tombstones whose listing is still there (a GC that died part way), and of upload journals."""
    owned: set[str] = set()
    outputs = {v.md5 for v in dropping} | {d.md5 for e in inventory.datasets.values() for d in e.dropped.values()}
    for oid in outputs:
        if oid not in present:
            continue
        owned.add(oid)
        if oid.endswith(".dir"):
            try:
                owned |= referenced(store, oid)
            except IntegrityError:
                logger.warning("gc: the listing %s of a dropped version cannot be read", layout.object_key(oid))
    for _, objects in inventory.journals.values():
        owned |= objects
    return owned


def _plan(
    store: Store,
    inventory: _Inventory,
    roots: set[str],
    owned_of: Iterable[Version],
    live_leases: set[str],
    cutoff: datetime,
    delete_foreign: bool,
) -> _Plan:
    objects = {oid: info for info in store.backend.scan(layout.OBJECTS) if (oid := layout.parse_object_key(info.key))}
    owned = _owned(store, inventory, owned_of, set(objects))
    # Objects a live commit is uploading are its own until its record names them.
    roots = roots.union(*(named for lease, named in inventory.journals.values() if lease in live_leases))
    doomed: list[ObjectInfo] = []
    foreign: list[ObjectInfo] = []
    young: set[str] = set()
    marked = 0
    for oid, info in objects.items():
        if oid in roots:
            marked += 1
        elif oid not in owned:
            foreign.append(info)
            if delete_foreign and info.modified <= cutoff:
                doomed.append(info)
        elif info.modified > cutoff:
            young.add(oid)
        else:
            doomed.append(info)
    # A journal of a commit that is over is done with once none of its objects waits for the grace period.
    done = [key for key, (lease, named) in inventory.journals.items() if lease not in live_leases and not named & young]
    # File objects before listings: a GC that dies part way still finds the files through the listings.
    doomed.sort(key=lambda info: (info.key.endswith(".dir"), info.key))
    return _Plan(doomed, marked, young, foreign, done)


# ---------------------------------------------------------------------------- 6. sweep


def _tombstones(store: Store, holder: leases.Holder, dropping: list[Version], now: datetime) -> None:
    by = Author.current()
    for start in range(0, len(dropping), _BATCH):
        _still_ours(holder)
        for version in dropping[start : start + _BATCH]:
            tombstone = Dropped(
                dataset=version.dataset,
                number=version.number,
                id=version.id,
                created_at=version.created_at,
                md5=version.md5,
                dropped_at=now,
                dropped_by=by,
            )
            # The key exists (we read it), so no writer can create it; only GC, under its lock, rewrites it.
            store.backend.put(
                layout.version_key(version.dataset, version.number), tombstone.model_dump_json(indent=2).encode()
            )


def _still_ours(holder: leases.Holder) -> None:
    if not holder.valid(margin=holder.ttl / 3):
        raise ConflictError(
            "garbage collection lost its lock (its renewals failed or someone took it over) and stopped "
            "deleting; what it removed was unreferenced. Run it again"
        )


def _sweep(store: Store, holder: leases.Holder, keys: list[str]) -> None:
    for start in range(0, len(keys), _BATCH):
        _still_ours(holder)
        store.backend.delete_many(keys[start : start + _BATCH])


# ---------------------------------------------------------------------------- the whole


def collect(
    store: Store,
    *,
    keep_last: int | None,
    keep_within: timedelta | None,
    grace: timedelta | None,
    dry_run: bool,
    delete_foreign: bool = False,
) -> GcReport:
    """See :meth:`Store.gc`."""
    settings = store.settings
    ttl = timedelta(seconds=settings.lease_ttl)
    skew = timedelta(seconds=settings.clock_skew)
    if keep_last is not None and keep_last < 1:
        raise InputError("keep_last must be 1 or more: the newest version of every dataset is always kept")
    if keep_within is not None and keep_within < timedelta(0):
        raise InputError("keep_within must not be negative")
    grace = ttl + skew if grace is None else grace
    if grace < timedelta(0):
        raise InputError("the grace period must not be negative")

    holder = None
    if not dry_run:
        store._ensure_writable()
        holder = _take_lock(store, ttl, skew)
    try:
        started = utcnow()
        in_flight = _leases(store, skew, None if dry_run else time.monotonic() + settings.gc_wait)
        inventory = _inventory(store)
        kept = _kept(inventory, keep_last, keep_within, started)
        dropping = sorted(
            (v for name, e in inventory.datasets.items() for n, v in e.versions.items() if n not in kept[name]),
            key=lambda v: (v.dataset, v.number),
        )
        roots, skipped = _mark(store, inventory, kept)
        roots |= in_flight.roots
        plan = _plan(store, inventory, roots, dropping, in_flight.live, _before(started, grace), delete_foreign)
        doomed = [] if skipped else plan.doomed

        removed_leases = 0
        if holder is not None:
            # Readers find the head from latest.json by probing forward; a hint left pointing at a
            # dropped record would send them back (and writers would step over tombstones).
            for name in sorted({v.dataset for v in dropping}):
                newest = inventory.datasets[name].versions[max(kept[name])]
                if not store._advance_latest(newest):
                    raise ConflictError(
                        f"could not move the latest.json of {name!r} past the versions to drop; garbage "
                        "collection deleted nothing. Run it again"
                    )
            _tombstones(store, holder, dropping, utcnow())
            _sweep(store, holder, [info.key for info in doomed])
            if not skipped:
                _sweep(store, holder, plan.journals_done)
            store.backend.delete_many(in_flight.dead)
            removed_leases = len(in_flight.dead)
            day_ago = started - timedelta(days=1)
            store.backend.delete_many(i.key for i in store.backend.scan(layout.PROBES) if i.modified < day_ago)
        if skipped:
            logger.warning("gc: %s", skipped)
        report = GcReport(
            dry_run=dry_run,
            versions_kept=sum(len(ns) for ns in kept.values()),
            versions_deleted=[v.ref for v in dropping],
            objects_kept=plan.marked,
            objects_deleted=len(doomed),
            bytes_deleted=sum(info.size for info in doomed),
            objects_too_young=len(plan.young),
            leases_live=len(in_flight.live),
            leases_removed=removed_leases,
            deleted=sorted(info.key for info in doomed),
            foreign_objects=len(plan.foreign),
            foreign_bytes=sum(info.size for info in plan.foreign),
            foreign_deleted=delete_foreign and not skipped,
            unreadable_records=inventory.unreadable,
            sweep_skipped=skipped,
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
    finally:
        if holder is not None:
            holder.release()
