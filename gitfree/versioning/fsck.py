"""``fsck``: prove that every version's objects are in the store and hash right; repair from the worker cache.

One listing of the objects (``files/md5/``) answers existence for all versions at
once. Content is checked by the ETag where the server gives the md5 of the content
(S3 single-part uploads), and by downloading and hashing with ``deep=True`` (also
for the file backend and multipart uploads). ``repair=True`` re-uploads missing or
damaged objects that the worker cache holds with the right hash (files before
listings, as a commit does), and points a broken ``latest.json`` at the head.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout, leases
from .backends import KeyMissing, ObjectInfo, OutcomeUnknown, PreconditionFailed
from .tree import validate_entries, validate_path
from .errors import GitfreeError, IntegrityError
from .models import Dropped, FileEntry, FsckReport, Latest, Problem, Tag, Version
from .refs import validate_dataset_name

if TYPE_CHECKING:
    from .store import Store

__all__ = ["check"]

logger = logging.getLogger("gitfree")

_MD5 = re.compile(r"[0-9a-f]{32}")
_JOBS = 16


def _file_md5(path: Path) -> str | None:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


class _Checker:
    def __init__(self, store: Store, deep: bool) -> None:
        self.store = store
        self.deep = deep
        self.objects: dict[str, ObjectInfo] = {}
        self.verdicts: dict[str, str | None] = {}
        """oid -> None (fine) or the problem kind, for objects already judged."""
        self.bytes_hashed = 0
        self.unverified = 0

    def scan(self) -> None:
        for info in self.store.backend.scan("files/md5/"):
            oid = layout.parse_object_key(info.key)
            if oid is not None:
                self.objects[oid] = info

    def judge(self, oids: Iterable[str]) -> None:
        """Decide for each oid: missing, hash mismatch, or fine (in parallel where it downloads)."""
        todo = sorted({o for o in oids if o not in self.verdicts})

        def one(oid: str) -> tuple[str, str | None, int]:
            info = self.objects.get(oid)
            if info is None:
                return oid, "missing_object", 0
            want = oid.removesuffix(".dir")
            if not self.deep and info.etag and _MD5.fullmatch(info.etag):
                return oid, (None if info.etag == want else "hash_mismatch"), 0
            if not self.deep:
                return oid, "unverified", 0
            try:
                got, size = self.store.backend.md5(info.key)
            except KeyMissing:
                return oid, "missing_object", 0
            return oid, (None if got == want else "hash_mismatch"), size

        with ThreadPoolExecutor(max_workers=_JOBS) as pool:
            for oid, verdict, size in pool.map(one, todo):
                self.bytes_hashed += size
                if verdict == "unverified":
                    self.unverified += 1
                    verdict = None
                self.verdicts[oid] = verdict

    def listing(self, oid: str) -> list[FileEntry] | Problem:
        key = layout.object_key(oid)
        try:
            raw, _ = self.store.backend.get(key)
        except KeyMissing:
            return Problem(kind="missing_listing", key=key, detail="the .dir listing is missing")
        if hashlib.md5(raw, usedforsecurity=False).hexdigest() != oid.removesuffix(".dir"):
            return Problem(kind="hash_mismatch", key=key, detail="the .dir listing does not match its hash")
        self.verdicts[oid] = None
        try:
            items = json.loads(raw)
            entries = [FileEntry(path=validate_path(i.get("relpath")), md5=str(i.get("md5"))) for i in items]
            validate_entries(entries)
            bad = next((e for e in entries if not _MD5.fullmatch(e.md5)), None)
            if bad is not None:
                raise IntegrityError(f"{bad.path!r} has no valid md5")
        except (ValueError, TypeError, AttributeError, GitfreeError) as exc:
            detail = str(exc) if isinstance(exc, GitfreeError) else "not a DVC directory listing"
            return Problem(kind="bad_listing", key=key, detail=detail)
        return entries


def check(store: Store, *, deep: bool = False, repair: bool = False, datasets: Iterable[str] = ()) -> FsckReport:
    """See :meth:`Store.fsck`."""
    wanted = set(datasets)
    version_keys: dict[str, dict[int, str]] = defaultdict(dict)
    tag_keys: list[str] = []
    latest_keys: dict[str, str] = {}
    for key in store.backend.list(layout.DATASETS):
        if parsed := layout.parse_version_key(key):
            version_keys[parsed[0]][parsed[1]] = key
        elif layout.parse_tag_key(key):
            tag_keys.append(key)
        elif (name := layout.parse_latest_key(key)) is not None:
            latest_keys[name] = key
    if wanted:
        unknown = sorted(wanted - set(version_keys))
        if unknown:  # a misspelt name must not pass a CI check as "no problems"
            for name in unknown:
                validate_dataset_name(name)
            raise store._not_found_dataset(unknown[0])
        version_keys = defaultdict(dict, {d: v for d, v in version_keys.items() if d in wanted})
        tag_keys = [k for k in tag_keys if (layout.parse_tag_key(k) or ("", ""))[0] in wanted]
        latest_keys = {d: k for d, k in latest_keys.items() if d in wanted}

    problems: list[Problem] = []
    versions: list[Version] = []

    dropped: set[tuple[str, int]] = set()
    raw_records = store._transfer().read_many([k for ns in version_keys.values() for k in ns.values()])
    for dataset, numbers in version_keys.items():
        for number, key in sorted(numbers.items()):
            raw = raw_records.get(key)
            if raw is None:  # removed while we looked
                continue
            try:
                record = store._version_record(key, raw, dataset, number)
            except IntegrityError as exc:
                problems.append(Problem(kind="bad_record", key=key, detail=str(exc), dataset=dataset, number=number))
                continue
            if isinstance(record, Dropped):
                dropped.add((dataset, number))
            else:
                versions.append(record)

    checker = _Checker(store, deep)
    checker.scan()
    needs: dict[str, list[Version]] = defaultdict(list)
    """oid -> the versions that reference it."""
    for version in versions:
        out = version.pointer.out
        if not out.is_dir:
            needs[out.md5].append(version)
            continue
        listing = checker.listing(out.md5)
        if isinstance(listing, Problem):
            problems.append(listing.model_copy(update={"dataset": version.dataset, "number": version.number}))
            continue
        for entry in listing:
            needs[entry.md5].append(version)
    checker.judge(needs)
    for oid, referrers in sorted(needs.items()):
        verdict = checker.verdicts.get(oid)
        if verdict is None:
            continue
        for version in referrers:
            detail = "missing from the store" if verdict == "missing_object" else "content does not match its md5"
            problems.append(
                Problem(
                    kind=verdict,
                    key=layout.object_key(oid),
                    detail=detail,
                    dataset=version.dataset,
                    number=version.number,
                )
            )

    present = {(v.dataset, v.number) for v in versions} | {(p.dataset, p.number) for p in problems if p.number}
    for key in tag_keys:
        try:
            tag = store._read(key, Tag)
        except IntegrityError as exc:
            problems.append(Problem(kind="bad_record", key=key, detail=str(exc)))
            continue
        except KeyMissing:
            continue
        if layout.parse_tag_key(key) != (tag.dataset, tag.tag):
            problems.append(Problem(kind="bad_record", key=key, detail=f"the record names the tag {tag.ref}"))
        elif (tag.dataset, tag.number) not in present:
            gone = "was dropped by garbage collection" if (tag.dataset, tag.number) in dropped else "does not exist"
            problems.append(
                Problem(
                    kind="dangling_tag",
                    key=key,
                    detail=f"tag {tag.ref} points at version {tag.number}, which {gone}",
                    dataset=tag.dataset,
                    number=tag.number,
                )
            )

    heads: dict[str, int] = {}
    for version in versions:
        heads[version.dataset] = max(heads.get(version.dataset, 0), version.number)
    for dataset, key in latest_keys.items():
        try:
            latest = store._read(key, Latest)
            ok = latest.number <= heads.get(dataset, 0) and latest.version.dataset == dataset
            if ok:
                ok = store._version(dataset, latest.number).id == latest.version.id
        except (IntegrityError, KeyMissing):
            ok = False
        if not ok:
            problems.append(
                Problem(
                    kind="bad_latest",
                    key=key,
                    detail="latest.json does not match a version record",
                    dataset=dataset,
                )
            )

    stale = 0
    skew = store._skew()
    for key in store.backend.list(layout.LEASES):
        found = leases.read(store.backend, key)
        if found is not None and leases.is_dead(found[0], skew):
            stale += 1

    if repair and problems:
        problems = _repair(store, problems, heads)
    report = FsckReport(
        datasets=len(version_keys),
        versions=sum(len(ns) for ns in version_keys.values()) - len(dropped),
        dropped=len(dropped),
        tags=len(tag_keys),
        objects=len(needs),
        bytes_hashed=checker.bytes_hashed,
        unverified=checker.unverified,
        stale_leases=stale,
        problems=sorted(problems, key=lambda p: (p.dataset or "", p.number or 0, p.kind, p.key)),
    )
    logger.info("fsck: %d version(s), %d object(s), %d problem(s)", report.versions, report.objects, len(problems))
    return report


def _repair(store: Store, problems: list[Problem], heads: dict[str, int]) -> list[Problem]:
    """Re-upload what the worker cache holds intact (files first, then listings); fix latest.json."""
    store._ensure_writable()
    fixable = {"missing_object", "hash_mismatch", "missing_listing"}
    oids = {p.key.removeprefix("files/md5/").replace("/", "", 1) for p in problems if p.kind in fixable}
    intact = [oid for oid in oids if _file_md5(store._cached(oid)) == oid.removesuffix(".dir")]
    engine = store._transfer()
    engine.upload([oid for oid in intact if not oid.endswith(".dir")])  # files before listings
    engine.upload([oid for oid in intact if oid.endswith(".dir")])
    uploaded: set[str] = set()
    for oid in intact:
        if store.backend.md5(layout.object_key(oid))[0] == oid.removesuffix(".dir"):
            uploaded.add(oid)
            logger.info("fsck: re-uploaded %s from the worker cache", layout.object_key(oid))
    fixed_latest: set[str] = set()
    for p in problems:
        if p.kind == "bad_latest" and p.dataset and p.dataset in heads:
            head = store._version(p.dataset, heads[p.dataset])
            data = Latest(number=head.number, version=head).model_dump_json().encode()
            try:
                store.backend.replace(p.key, data, store.backend.get(p.key)[1])
            except (KeyMissing, PreconditionFailed, OutcomeUnknown):
                continue  # a writer moved it meanwhile; the next fsck judges the new one
            fixed_latest.add(p.key)
    return [
        p.model_copy(update={"repaired": True})
        if (p.kind in fixable and p.key.removeprefix("files/md5/").replace("/", "", 1) in uploaded)
        or p.key in fixed_latest
        else p
        for p in problems
    ]
