"""The ordered write protocols: a commit, and a tag move (docs/design.md, "Commit" and "Tag moves").

Each step below is one of the design's, in its order; the order is what makes them safe with any number
of writers and a garbage collection at once, over nothing but conditional writes:

- a version number is given once and never changes meaning: records are created only where none is
  (``If-None-Match``), and a number garbage collection dropped keeps its tombstone;
- a record is written only after every object it names is durable in the store, under a lease that
  a garbage collection either sees (and keeps what it names) or that sees its lock (and waits);
- a commit whose data and inputs equal the head's writes nothing; a retry that lost its answer finds
  its own record by its commit id;
- a reverse lineage edge is written only after the record it points at, so an edge names a version that
  was committed (and, once GC dropped it, a tombstone).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import layout
from .backends import KeyExists, KeyMissing, OutcomeUnknown, PreconditionFailed
from .catalog import Catalog
from .errors import ConflictError, GitfreeError, InputError, IntegrityError, NotFoundError, first_error
from .kit import format_count, format_size
from .leases import Coordinator, Holder
from .models import (
    REFERENCE_FORMAT,
    Author,
    Dropped,
    InputRef,
    Output,
    Reference,
    References,
    Tag,
    TagEvent,
    Uploads,
    Version,
    utcnow,
)
from .objects import Objects
from .refs import validate_dataset_name, validate_tag_name
from .sources import Source
from .staging import HashState, stage

__all__ = [
    "ABSENT",
    "TagWrite",
    "check_fields",
    "commit",
    "commit_by_reference",
    "delete_tag",
    "move_tag",
    "same_version",
    "write_event",
    "write_tag",
]

logger = logging.getLogger("gitfree")

_jitter = random.Random()  # noqa: S311 - jitter, not crypto
"""gitfree's own generator: the module's global one is the user's (a seeded training run must not see ours)."""

_HEAD_FIRST = 1024 * 1024
"""New objects at least this large are checked for (HEAD) before they are uploaded."""


def commit(
    catalog: Catalog,
    objects: Objects,
    coordinator: Coordinator,
    *,
    source: Path,
    fields: dict[str, Any],
    force: bool,
    attempts: int,
) -> Version:
    """Commit ``source`` as the next version of ``fields["dataset"]``; see :meth:`.Store.commit`.

    ``fields`` are the record's own (dataset, id, message, author, metadata, metrics, inputs); the
    caller has checked the name and the source.
    """
    dataset, commit_id = fields["dataset"], fields["id"]
    # 1. What no reader could read back is refused before anything is hashed or uploaded.
    check_fields(fields)
    # 2. Stage: hash into the worker cache with dvc-data (the listing of a folder is made here).
    with HashState(objects.cache_dir) as state:
        staged = stage(source, source.name, objects.cache_dir, state, objects.callback(f"Hashing {source.name}"))
    # 3. The head: the same data from the same inputs is not a new version (nothing is written).
    head = catalog.head(dataset)
    if head is not None and not force and same_version(head, staged.out.md5, fields["inputs"]):
        logger.info("%s is unchanged since %s; no new version", source, head.ref)
        return _unchanged(catalog, head, commit_id)
    # 4. Once per process: the store takes conditional writes and is a store (or empty).
    catalog.ensure_writable()
    fields = {
        **fields,
        "pointer": {"outs": [staged.out]},
        "size": staged.out.size,
        "nfiles": staged.out.nfiles if staged.out.nfiles is not None else 1,
    }
    # 5. The lease, then the GC lock: a GC sees what we will reference, or we wait for it.
    with coordinator.commit_lease(dataset, staged.out.md5) as lease:
        # 6. Push: every object durable in the store, files before the listing.
        journal = push(catalog, objects, staged.out, staged.oids, head, lease)
        # 7. A lease that lapsed may have been judged dead: nothing it protected can be relied on
        # (checked again before every attempt of step 8).
        _still_leased(lease, dataset)
        # 8. The record, create-only, at the next free number (_record).
        # 9. The reverse lineage edges, still under the lease; then the journal is done with (_record).
        version = _record(catalog, head, fields, force, attempts, lease, journal)
    # 10. The hint, moved forward only.
    version = _published(catalog, version, commit_id)
    logger.info("committed %s (%s, %s)", version.ref, format_count(version.nfiles, "file"), format_size(version.size))
    return version


def _unchanged(catalog: Catalog, head: Version, commit_id: Any) -> Version:
    """The head a commit found holding its data already. A retry with the id of an attempt that did create it
    (its answer lost) made it too, and finishes it: that attempt may have died before its edges (step 9)."""
    if head.id == commit_id and head.inputs:
        _write_edges(catalog, head)
    return head.model_copy(update={"created": head.id == commit_id})


def _record(
    catalog: Catalog,
    head: Version | None,
    fields: dict[str, Any],
    force: bool,
    attempts: int,
    lease: Holder,
    journal: str | None,
) -> Version:
    """Under the commit's ``lease``: the record, create-only, at the next free number (Commit step 8); the reverse
    lineage edges, create-only, one per input in this store (step 9: fsck takes a version without its edges
    whose commit holds a live lease for one in flight); then, the record naming the objects, the upload's
    ``journal`` is done with (a failure leaves it to gc)."""
    dataset = fields["dataset"]
    version = create_version(
        catalog, head.number + 1 if head else 1, fields, force, attempts, lambda: _still_leased(lease, dataset)
    )
    if version.id == fields["id"] and version.inputs:
        _write_edges(catalog, version)
    if journal is not None:
        with contextlib.suppress(GitfreeError):
            catalog.backend.delete(journal)
    return version


def _published(catalog: Catalog, version: Version, commit_id: Any) -> Version:
    """``latest.json`` moved forward to ``version`` (only forward), and whether this commit made it."""
    catalog.advance_latest(version)
    return version.model_copy(update={"created": version.id == commit_id})


def commit_by_reference(
    catalog: Catalog,
    objects: Objects,
    coordinator: Coordinator,
    *,
    source: Source,
    fields: dict[str, Any],
    force: bool,
    attempts: int,
) -> Version:
    """Commit the files of ``source`` where they are as the next version of ``fields["dataset"]``
    (docs/design.md, "Versions by reference", "The commit"); see :meth:`.Store.commit`."""
    dataset, commit_id = fields["dataset"], fields["id"]
    check_fields(fields)
    # 1. The head, and its table when it references the same source: unchanged files are neither read nor HEADed.
    head = catalog.head(dataset)
    previous = _head_table(catalog, head, source.url)
    if previous is not None and previous.endpoint != source.endpoint:
        previous = None  # the same bucket and prefix on another endpoint is another source
    # 2. LIST the source; HEAD (and hash when the ETag is no md5) only the new or changed files.
    table = References(source=source.url, kind=source.kind, entries=source.entries(previous), endpoint=source.endpoint)
    data, listing = table.data(), table.listing()
    reference = Reference(table=_md5(data), source=source.url)
    out = Output(
        md5=_md5(listing) + layout.LISTING,
        size=sum(e.size for e in table.entries),
        nfiles=len(table.entries),
        path=_output_name(source.url),
    )
    # 3. The same table from the same inputs is the head: nothing is written (R4: no object was read).
    if head is not None and not force and same_version(head, out.md5, fields["inputs"], reference):
        logger.info("%s is unchanged since %s; no new version", source.url, head.ref)
        return _unchanged(catalog, head, commit_id)
    catalog.ensure_writable()
    objects.keep_listing(out.md5, listing)
    fields = {
        **fields,
        "format": REFERENCE_FORMAT,
        "reference": reference,
        "pointer": {"outs": [out]},
        "size": out.size,
        "nfiles": out.nfiles,
    }
    # 4. The lease names the listing: a GC in flight keeps it (and the entries' md5s, should they be materialised).
    with coordinator.commit_lease(dataset, out.md5) as lease:
        # 5. The rebuilt listing into files/md5/ (journaled as a commit's upload), then the table, create-only:
        # a record never names a table or a listing that is not durable (R5: a failure leaves no record).
        journal = push(catalog, objects, out, frozenset({out.md5}), head, lease)
        catalog.create_table(reference.table, data)
        _still_leased(lease, dataset)
        # 6. The record, format 2, and its edges, as Commit steps 8 and 9 write them.
        version = _record(catalog, head, fields, force, attempts, lease, journal)
    # 7. The hint, moved forward only.
    version = _published(catalog, version, commit_id)
    logger.info("committed %s by reference to %s (%s)", version.ref, source.url, format_count(version.nfiles, "file"))
    return version


def _head_table(catalog: Catalog, head: Version | None, url: str) -> References | None:
    """The head's reference table when the head references ``url`` (an unreadable one helps nothing: ``None``)."""
    if head is None or head.reference is None or head.reference.source != url:
        return None
    try:
        return catalog.references(head)[0]
    except IntegrityError as exc:
        logger.warning("every file of %s is looked at again: %s", url, exc)
        return None


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _output_name(url: str) -> str:
    """The output's name in the ``.dvc`` pointer: the source prefix's last segment (the bucket's for a root)."""
    return url.rstrip("/").rsplit("/", 1)[-1] or "data"


def _write_edges(catalog: Catalog, version: Version) -> None:
    """Step 9: the version is committed whatever happens here; an edge that cannot be written is a
    warning (``gitfree fsck`` reports it, ``gitfree reindex`` writes it)."""
    try:
        catalog.write_edges(version)
    except (GitfreeError, KeyMissing) as exc:
        logger.warning(
            "committed %s, but could not record it among the consumers of its inputs (%s); `gitfree reindex` "
            "records it",
            version.ref,
            exc,
        )


def push(
    catalog: Catalog, objects: Objects, out: Output, oids: frozenset[str], head: Version | None, lease: Holder
) -> str | None:
    """Step 6: make every object of the new version durable in the store; the upload journal's key, if any.

    Objects of the head are not sent again: garbage collection never removes what a kept version
    references, and the head's record still being that version under our lease proves it was kept
    (GC replaces records by tombstones before it deletes objects; ``fsck`` proves the objects). Before
    anything is uploaded, the list of what will be is written to an upload journal
    (``uploads/<lease id>.json``): how a later garbage collection tells this commit's objects, should it
    crash, from another tool's. Small new objects are PUT at once (a PUT of a content-addressed object
    is idempotent and costs what a HEAD would); large ones only after a HEAD says they are missing. The
    ``.dir`` listing goes last, so a listing in the store means its files are there.
    """
    known = _kept_by(catalog, objects, head)
    files = sorted(oids - known - ({out.md5} if out.is_dir else set()))
    large = [oid for oid in files if objects.cached(oid).stat().st_size >= _HEAD_FIRST]
    present = objects.present(large)
    sending = [oid for oid in files if oid not in present]
    listing = [out.md5] if out.is_dir and out.md5 not in known else []
    if not sending and not listing:
        return None
    journal = layout.upload_key(str(lease.lease.id))
    record = Uploads(
        lease=lease.lease.id, dataset=lease.lease.dataset or "", created_at=utcnow(), objects=[*sending, *listing]
    )
    catalog.backend.put(journal, record.model_dump_json().encode())
    objects.upload(sending, f"Uploading {out.path}")
    objects.upload(listing)
    return journal


def _kept_by(catalog: Catalog, objects: Objects, head: Version | None) -> set[str]:
    """The objects of ``head`` if its record is still that version (read under our lease), else none."""
    if head is None:
        return set()
    try:
        if catalog.version(head.dataset, head.number).id != head.id:
            return set()
    except (KeyMissing, IntegrityError):
        return set()
    known = {head.md5}
    if head.is_dir:
        with contextlib.suppress(GitfreeError):  # an unreadable head listing: trust nothing of it
            known |= {entry.md5 for entry in objects.listing(head.md5)}
    return known


def _still_leased(lease: Holder, dataset: str) -> None:
    if not lease.valid(margin=lease.ttl / 3):
        raise ConflictError(
            f"the lease of this commit to {dataset!r} lapsed before its record was written (its heartbeats failed "
            "or its writes took too long), so a garbage collection may have judged it dead; nothing was committed. "
            "Retry: large objects already uploaded are not sent again"
        )


def create_version(
    catalog: Catalog,
    number: int,
    fields: dict[str, Any],
    force: bool,
    attempts: int,
    leased: Callable[[], None] = lambda: None,
) -> Version:
    """Step 8: create-only write of the next number; on a conflict or a lost answer, read what is there.

    Our own id: it landed (only the answer was lost). A tombstone or an unreadable record: the number
    is taken, try the first free number after it (:func:`_first_free`: writers that fell behind catch up at
    once). The same data from the same inputs by another writer: that is our version.
    """
    dataset = fields["dataset"]
    try:
        template = Version.model_validate({**fields, "number": 1, "created_at": utcnow()})
    except ValidationError as exc:
        raise InputError(f"cannot commit to {dataset!r}: {first_error(exc)}") from None
    unanswered = 0
    for attempt in range(attempts):
        leased()  # each attempt under a lease still valid: its objects may not outlive it
        record = template.model_copy(update={"number": number, "parent": number - 1 or None, "created_at": utcnow()})
        try:
            catalog.create(layout.version_key(dataset, number), record)
            return record
        except (KeyExists, OutcomeUnknown):
            pass
        try:
            existing = catalog.record(dataset, number)
        except KeyMissing:  # the outcome was unknown and nothing is there: try this number again
            unanswered += 1
            time.sleep(_jitter.uniform(0, min(0.05 * 2**attempt, 2.0)))
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
            if not force and same_version(existing, record.md5, record.inputs, record.reference):  # another made it
                return existing
        time.sleep(_jitter.uniform(0, min(0.005 * 2**attempt, 0.2)))
        number, made = _next_number(catalog, record, number, force)
        if made is not None:
            return made
    why = (
        f"the store's answer to {unanswered} of them was lost (and what they wrote is not there)"
        if unanswered
        else "other writers kept taking the next version number"
    )
    raise ConflictError(
        f"could not commit to {dataset!r} after {attempts} attempts: {why}; retry (the uploaded objects stay "
        "in the store, and large ones are not sent again)"
    )


def _first_free(catalog: Catalog, dataset: str, taken: int) -> int:
    """The first number after ``taken`` (seen taken) that has no record now: probe 1, 2, 4, ... ahead, then
    bisect back. A writer that lost its number while others took k more spends about 2·log2(k) existence
    checks, not k attempts. The number returned always follows one seen taken, so no gap is made."""
    low, step = taken, 1
    while catalog.taken(dataset, low + step):
        low, step = low + step, step * 2
    high = low + step  # seen free; low seen taken
    while high - low > 1:
        middle = (low + high) // 2
        if catalog.taken(dataset, middle):
            low = middle
        else:
            high = middle
    return high


def _next_number(catalog: Catalog, record: Version, lost: int, force: bool) -> tuple[int, Version | None]:
    """After losing ``lost``: the number to try next, and (without ``force``) the newest version if it is
    the same data from the same inputs as ``record`` (another writer made our version while we were behind)."""
    number = _first_free(catalog, record.dataset, lost)
    if force or number - 1 == lost:  # the record at ``lost`` was already compared
        return number, None
    try:
        newest = catalog.record(record.dataset, number - 1)
    except (KeyMissing, IntegrityError):
        return number, None
    if isinstance(newest, Version) and same_version(newest, record.md5, record.inputs, record.reference):
        return number, newest
    return number, None


ABSENT = -1
"""``expect_seq`` of a caller that found no record of the tag at all (a deleted tag has one: its marker's seq)."""


@dataclass(frozen=True)
class TagWrite:
    """What a caller wants of a tag: point it at ``number`` (``None``: delete it), said by ``author``.

    ``move``: replace a tag that points elsewhere. ``expect``: only from that version number (``--expect``).
    ``expect_seq``: only if the tag's record is still the one the caller read (its ``seq``, or
    :data:`ABSENT`): what a promotion's gate was judged against.
    """

    number: int | None
    author: Author
    message: str = ""
    gate: str = ""
    move: bool = False
    expect: int | None = None
    expect_seq: int | None = None

    @property
    def conditional(self) -> bool:
        return self.expect is not None or self.expect_seq is not None


def move_tag(
    catalog: Catalog,
    coordinator: Coordinator,
    version: Version,
    tag: str,
    *,
    move: bool,
    expect: int | None,
    attempts: int,
    author: Author | None = None,
    message: str = "",
    gate: str = "",
    expect_seq: int | None = None,
) -> Tag:
    """Point ``tag`` at ``version``; see :meth:`.Store.tag` (docs/design.md, "Tag moves").

    Step 1: the store proven writable (the caller checked the name and resolved the version). Step 2
    (:func:`write_tag`): read the tag, write the history entry of the record about to be replaced, then
    create the tag (``If-None-Match``) or swap it (``If-Match``; with ``expect``, only from that number;
    with ``expect_seq``, only from the record the caller read). Step 3: the history entry of our own
    record (if we stop first, the next writer of the tag, or any reader of its history, adds it). Step 4:
    a tag is a GC root written outside a lease, so, as a lease is, it is written first, then the GC lock
    is looked for (waiting while a GC runs), then the version is read again. A GC that took its lock
    after our write reads our tag and keeps the version; one that took it before has finished by then,
    and the record says whether it dropped the version.
    """
    catalog.ensure_writable()  # 1. (with the tag name and the version, checked by the caller)
    want = TagWrite(
        version.number,
        author or Author.current(),
        message,
        gate,
        move=move or expect is not None or expect_seq is not None,
        expect=expect,
        expect_seq=expect_seq,
    )
    record, etag = write_tag(catalog, version.dataset, tag, want, attempts)  # 2.
    if etag is None:  # it already pointed there: nothing written
        return record.model_copy(update={"written": False})
    write_event(catalog, record, strict=False)  # 3.
    coordinator.await_gc(time.monotonic() + coordinator.wait, f"tagging {record.ref}")  # 4.
    try:
        catalog.version(version.dataset, version.number)
    except KeyMissing:
        raise NotFoundError(
            f"{version.ref} was dropped by a garbage collection that ran while it was being tagged; "
            f"the tag {record.ref} was not kept{_withdraw(catalog, record, version, attempts)}"
        ) from None
    return record.model_copy(update={"written": True})


def _withdraw(catalog: Catalog, record: Tag, version: Version, attempts: int) -> str:
    """Step 4's withdrawal: delete the tag we wrote (if it is still our record) as any deletion is, recorded
    in its history; what went wrong, to add to the caller's error, if it could not be withdrawn."""
    why = f"withdrawn: {version.ref} was dropped by a garbage collection while it was being tagged"
    withdrawal = TagWrite(None, record.author, why, move=True, expect_seq=record.seq)
    try:
        deleted, _ = write_tag(catalog, record.dataset, record.tag, withdrawal, attempts)
    except (ConflictError, NotFoundError):  # moved or deleted since: not ours to undo
        return ""
    except GitfreeError as exc:
        return f" (but it could not be withdrawn: {exc}; delete it with untag)"
    write_event(catalog, deleted, strict=False)
    return ""


def delete_tag(
    catalog: Catalog, dataset: str, tag: str, *, expect: int | None, attempts: int, author: Author, message: str
) -> Tag:
    """Delete ``tag``: swap its record for a deleted marker (``seq`` + 1), then write that write's history
    entry; see :meth:`.Store.untag`. A deleted tag roots nothing, so no GC check is needed."""
    validate_dataset_name(dataset)
    validate_tag_name(tag)
    if not catalog.numbers(dataset):  # a misspelt dataset is not "no such tag"
        raise catalog.not_found_dataset(dataset)
    catalog.ensure_writable()
    want = TagWrite(None, author, message, move=True, expect=expect)
    record, _ = write_tag(catalog, dataset, tag, want, attempts)
    write_event(catalog, record, strict=False)
    return record.model_copy(update={"written": True})


def write_tag(catalog: Catalog, dataset: str, tag: str, want: TagWrite, attempts: int) -> tuple[Tag, str | None]:
    """Step 2 of a tag write: ``(record, etag)`` of the record written, or ``(current, None)`` when the
    tag already pointed at the version (nothing written).

    A record is replaced only after its history entry is written, and only by a swap on the ETag it was
    read with, so every record that was ever the tag's gets its entry, in the order of the swaps."""
    key = layout.tag_key(dataset, tag)
    mine: list[Tag] = []  # every record this call sent: one whose answer was lost may be there
    raced = False
    for attempt in range(1, attempts + 1):
        try:
            current, etag = catalog.read_tag(key)
        except KeyMissing:
            current, etag = None, ""
        if current is not None and current in mine:  # our write landed; only its answer was lost
            return current, etag
        if current is not None and not current.deleted and current.number == want.number:
            return current, None
        _check_tag_write(current, want, dataset, tag, raced)
        if current is not None:  # 2. never replace a record whose history entry is not written
            write_event(catalog, current, strict=True)
        record = _next_record(catalog, current, want, dataset, tag)
        mine.append(record)
        try:
            return record, catalog.create(key, record) if current is None else catalog.swap(key, record, etag)
        except (KeyExists, PreconditionFailed, OutcomeUnknown):
            raced = True  # read again: ours after a lost answer, else someone else's
            if not want.conditional:  # an unconditional move: someone else moved it; swap again
                time.sleep(_jitter.uniform(0, min(0.005 * 2**attempt, 0.2)))
    raise ConflictError(
        f"could not move tag {dataset}@{tag} after {attempts} attempts: others kept moving it at the same time; retry"
    )


def _check_tag_write(current: Tag | None, want: TagWrite, dataset: str, tag: str, raced: bool) -> None:
    """Refuse a write the tag as it is now does not allow (each refusal is a ``ConflictError``, or a
    ``NotFoundError`` for deleting a tag that is not there)."""
    ref = f"{dataset}@{tag}"
    if want.expect_seq is not None and (ABSENT if current is None else current.seq) != want.expect_seq:
        now = "no longer exists" if current is None or current.deleted else f"is now at version {current.number}"
        raise ConflictError(f"tag {ref} was moved by someone else since it was read (it {now}); look again and retry")
    if current is None or current.deleted:
        if want.number is None:
            when = f" (on {current.created_at:%Y-%m-%d %H:%M} UTC)" if current is not None else ""
            raise NotFoundError(
                f"{dataset!r} has no tag {tag!r} to delete: it does not exist or was deleted already{when}"
            )
        if want.expect is not None:
            raise _permanent(ConflictError(f"tag {ref} does not exist, so it is not at version {want.expect}"))
        return
    if want.expect is not None and current.number != want.expect:
        if raced:
            raise _permanent(
                ConflictError(
                    f"tag {ref} was moved by someone else (now at version {current.number}), not at {want.expect} "
                    "any more; look again and retry"
                )
            )
        raise _permanent(
            ConflictError(
                f"tag {ref} is at version {current.number}, not {want.expect} as expected; look again and retry"
            )
        )
    if not want.move:
        raise _permanent(
            ConflictError(
                f"tag {ref} already points at version {current.number}; pass move=True to move it to {want.number}",
                options=(("move=True", "--move"),),
            )
        )


def _next_record(catalog: Catalog, current: Tag | None, want: TagWrite, dataset: str, tag: str) -> Tag:
    """The record that follows ``current``: ``seq`` one higher (a tag with no record at all goes on from its
    history, so no entry is ever written twice), ``previous`` the version it pointed at."""
    seq = catalog.last_seq(dataset, tag) + 1 if current is None else current.seq + 1
    before = None if current is None or current.deleted else current.number
    if want.number is not None:
        number, previous = want.number, before
    elif before is not None:  # a deletion keeps the number it pointed at
        number, previous = before, before
    else:  # refused by the check before (nothing to delete)
        raise NotFoundError(f"{dataset!r} has no tag {tag!r} to delete")
    return Tag(
        dataset=dataset,
        tag=tag,
        number=number,
        created_at=utcnow(),
        author=want.author,
        seq=seq,
        previous=previous,
        message=want.message,
        gate=want.gate,
        deleted=want.number is None,
    )


def write_event(catalog: Catalog, record: Tag, *, strict: bool) -> None:
    """Create the history entry of the write that left ``record`` (create-only: whoever writes it writes the
    same entry, made from the record alone). ``strict``: raise if it cannot be written (the caller then
    does not replace the record); else log a warning (the next writer of the tag or a reader adds it)."""
    key = layout.tag_event_key(record.dataset, record.tag, record.seq)
    event = TagEvent.of(record)
    for _ in range(3):
        try:
            catalog.create(key, event)
            return
        except KeyExists:
            return
        except OutcomeUnknown:
            continue  # written or not: creating it again tells
        except GitfreeError as exc:
            if strict:
                raise
            logger.warning(
                "the history entry %s was not written (%s); the next move of %s adds it", key, exc, record.ref
            )
            return
    if strict:
        raise GitfreeError(f"the store's answers to writing {key} were lost three times; the tag was not moved: retry")
    logger.warning("the history entry %s may not be written; the next move of %s adds it", key, record.ref)


def _permanent(error: ConflictError) -> ConflictError:
    """A conflict that asking again cannot resolve (the tag is elsewhere than the caller said)."""
    error.transient = False
    return error


def same_version(head: Version, md5: str, inputs: Sequence[InputRef], reference: Reference | None = None) -> bool:
    """Would a commit of ``md5`` made from ``inputs`` (by ``reference``, or uploaded) say nothing ``head`` does
    not? Lineage is part of what a version means: the same data made from other inputs is a new version (same
    objects); so is the same data by another reference table, or uploaded instead of referenced (what a reader
    fetches changed)."""
    key = lambda ref: (ref.store or "", ref.dataset, ref.number)  # noqa: E731
    same_inputs = sorted(head.inputs, key=key) == sorted(inputs, key=key)
    return head.md5 == md5 and same_inputs and head.reference == reference


def check_fields(fields: dict[str, Any]) -> None:
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
        raise InputError(f"cannot commit to {fields['dataset']!r}: {first_error(exc)}") from None
    except ValueError as exc:  # e.g. metadata that JSON cannot hold
        raise InputError(f"cannot commit to {fields['dataset']!r}: {exc}") from None
