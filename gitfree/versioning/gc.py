"""Garbage collection: remove versions the retention policy drops, then objects nothing references.

Explicit, never automatic (DESIGN.md, "Garbage collection"). Mark and sweep, as
restic's ``prune`` and lakeFS's GC do, with the lease protocol of :mod:`.leases`:

1. Take ``gc/lock.json`` (create-only; a dead holder's lock is taken over with
   ``If-Match``), renewed while GC runs.
2. *Then* read the leases of commits in flight. A live lease names the object its
   commit will reference; GC keeps it and every file its listing names. A lease
   whose listing is not uploaded yet is waited for (its writer saw no lock, so it
   goes on and uploads). Writers that come later see the lock and wait.
3. Read version records and tags; the policy keeps, in every dataset, the newest
   version, the last ``keep_last``, those younger than ``keep_within`` and every
   tagged one (no policy: every version).
4. Mark every object the kept versions and live leases reference; any record or
   listing that cannot be read stops GC before it deletes anything.
5. Sweep: delete dropped version records first (so no reader resolves a version
   whose data is going), then unreferenced objects older than the grace period,
   in batches, checking before each that the lock is still ours. A GC that dies
   mid-sweep leaves only unreferenced objects behind, and is simply run again.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import layout, leases
from .backends import KeyExists, ObjectInfo, OutcomeUnknown, PreconditionFailed
from .errors import ConflictError, InputError, IntegrityError
from .models import GcReport, Lease, Tag, utcnow

if TYPE_CHECKING:
    from .store import Store

__all__ = ["OBJECT_KEY", "collect", "object_md5", "referenced"]

logger = logging.getLogger("gitfree")

OBJECT_KEY = re.compile(r"^files/md5/(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{30})(?P<dir>\.dir)?$")
_TAG_KEY = re.compile(r"^datasets/(?P<name>.+)/tags/(?P<tag>[^/]+)\.json$")
_BATCH = 500
_READ_JOBS = 16


def object_md5(key: str) -> str | None:
    """The oid (``md5`` or ``md5.dir``) of an object key in DVC's remote layout, else ``None``."""
    match = OBJECT_KEY.match(key)
    return f"{match['a']}{match['b']}{match['dir'] or ''}" if match else None


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


def _leases(store: Store, skew: timedelta, deadline: float | None) -> tuple[set[str], int, list[str]]:
    """Objects of live leases, how many are live, and the keys of dead ones.

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
            return roots, len(live), dead
        if time.monotonic() > deadline:
            first = pending[0]
            raise ConflictError(
                f"{len(pending)} commit(s) are still uploading to {store.url} (e.g. {first.dataset!r} on "
                f"{first.host}, pid {first.pid}, lease renewed until {first.expires_at:%H:%M:%S} UTC); garbage "
                "collection deleted nothing. Run it again when they finish (raise GITFREE_GC_WAIT to wait longer)"
            )
        logger.info("waiting for %d commit(s) in flight to finish uploading", len(pending))
        time.sleep(min(2.0, max(0.05, store.settings.gc_wait / 20)))


def _kept_numbers(
    numbers: dict[str, dict[int, datetime]],
    tagged: dict[str, set[int]],
    keep_last: int | None,
    keep_within: timedelta | None,
    now: datetime,
) -> dict[str, set[int]]:
    kept: dict[str, set[int]] = {}
    for dataset, created in numbers.items():
        ordered = sorted(created)
        if keep_last is None and keep_within is None:
            kept[dataset] = set(ordered)
            continue
        keep = {ordered[-1]} | tagged.get(dataset, set()) & set(ordered)
        if keep_last is not None:
            keep |= set(ordered[-keep_last:])
        if keep_within is not None:
            keep |= {n for n, at in created.items() if at >= now - keep_within}
        kept[dataset] = keep
    return kept


def collect(
    store: Store,
    *,
    keep_last: int | None,
    keep_within: timedelta | None,
    grace: timedelta | None,
    dry_run: bool,
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
        # Leases strictly after the lock (see the module docstring), records after the leases.
        deadline = None if dry_run else time.monotonic() + settings.gc_wait
        roots, live, dead_leases = _leases(store, skew, deadline)

        numbers: dict[str, dict[int, datetime]] = defaultdict(dict)
        tag_keys: list[str] = []
        for info in store.backend.scan(layout.DATASETS):
            parsed = layout.parse_version_key(info.key)
            if parsed:
                numbers[parsed[0]][parsed[1]] = info.modified
            elif _TAG_KEY.match(info.key):
                tag_keys.append(info.key)
        with ThreadPoolExecutor(max_workers=_READ_JOBS) as pool:
            tags: list[Tag] = list(pool.map(lambda k: store._read(k, Tag), tag_keys))
        tagged: dict[str, set[int]] = defaultdict(set)
        for tag in tags:
            tagged[tag.dataset].add(tag.number)
        kept = _kept_numbers(numbers, tagged, keep_last, keep_within, started)
        dropped = sorted((d, n) for d, created in numbers.items() for n in created if n not in kept[d])

        def objects_of(item: tuple[str, int]) -> set[str]:
            try:
                return referenced(store, store._version(*item).pointer.out.md5)
            except IntegrityError as exc:  # what a broken record or listing references is unknown
                raise IntegrityError(f"{exc}; garbage collection stopped before deleting anything") from None

        with ThreadPoolExecutor(max_workers=_READ_JOBS) as pool:
            for objects in pool.map(objects_of, [(d, n) for d, ns in kept.items() for n in ns]):
                roots |= objects

        cutoff = started - grace
        doomed: list[ObjectInfo] = []
        young = marked = 0
        for info in store.backend.scan("files/md5/"):
            oid = object_md5(info.key)
            if oid is None:
                continue  # not DVC's layout: not ours to judge
            if oid in roots:
                marked += 1
            elif info.modified > cutoff:
                young += 1
            else:
                doomed.append(info)

        removed_leases = 0
        if holder is not None:
            # Readers find the head from latest.json by probing forward; a hint left pointing at a
            # dropped record would make them stop there (and a writer reuse the next number).
            for dataset in sorted({d for d, _ in dropped}):
                if not store._advance_latest(store._version(dataset, max(numbers[dataset]))):
                    raise ConflictError(
                        f"could not move the latest.json of {dataset!r} past the versions to drop; garbage "
                        "collection deleted nothing. Run it again"
                    )
            _sweep(store, holder, [layout.version_key(d, n) for d, n in dropped])
            _sweep(store, holder, [info.key for info in doomed])
            store.backend.delete_many(dead_leases)
            removed_leases = len(dead_leases)
            day_ago = started - timedelta(days=1)
            store.backend.delete_many(i.key for i in store.backend.scan(layout.PROBES) if i.modified < day_ago)
        report = GcReport(
            dry_run=dry_run,
            versions_kept=sum(len(ns) for ns in kept.values()),
            versions_deleted=[f"{d}@{n}" for d, n in dropped],
            objects_kept=marked,
            objects_deleted=len(doomed),
            bytes_deleted=sum(info.size for info in doomed),
            objects_too_young=young,
            leases_live=live,
            leases_removed=removed_leases,
            deleted=sorted(info.key for info in doomed),
        )
        logger.info(
            "gc%s: %d version(s) and %d object(s) (%d bytes) %s",
            " (dry run)" if dry_run else "",
            len(dropped),
            report.objects_deleted,
            report.bytes_deleted,
            "would go" if dry_run else "removed",
        )
        return report
    finally:
        if holder is not None:
            holder.release()


def _sweep(store: Store, holder: leases.Holder, keys: list[str]) -> None:
    for start in range(0, len(keys), _BATCH):
        if not holder.valid(margin=holder.ttl / 3):
            raise ConflictError(
                "garbage collection lost its lock (its renewals failed or someone took it over) and stopped "
                "deleting; what it removed was unreferenced. Run it again"
            )
        store.backend.delete_many(keys[start : start + _BATCH])
