"""Safety check: ``fsck`` reports a ``latest.json`` that does not match a version record
(``bad_latest``), a version whose ``.dir`` listing is missing (``missing_listing``) or is not a listing
(``bad_listing``), and ``repair`` fixes what it can. Without these checks fsck calls such a store clean.

The damage is done with plain writes to the store (``backend.put``/``create``/``delete``), as a
buggy tool, a bad restore or an operator's ``aws s3 rm`` would do it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import GitfreeError, IntegrityError, Store, Version
from gitfree.versioning import layout
from gitfree.versioning.models import FsckReport

FILES = {"a": b"alpha", "sub/b": b"beta"}


def _kinds(report: FsckReport) -> set[tuple[str, str | None]]:
    return {(p.kind, p.ref) for p in report.problems}


# ---------------------------------------------------------------------------- bad_latest


def _garbage(store: Store, tmp_path: Path, raw: bytes, version: Version) -> bytes:
    return b'{"format": 1, "number": '


def _another_datasets(store: Store, tmp_path: Path, raw: bytes, version: Version) -> bytes:
    store.commit("other", write_tree(tmp_path / "other", {"x": b"another dataset"}))
    return store.backend.get(layout.latest_key("other"))[0]


def _another_id(store: Store, tmp_path: Path, raw: bytes, version: Version) -> bytes:
    forged = raw.replace(str(version.id).encode(), str(uuid.uuid4()).encode())
    assert forged != raw, "latest.json does not name the version's id"
    return forged


@pytest.mark.parametrize("kind", ["s3", "file"])
@pytest.mark.parametrize("damage", [_garbage, _another_datasets, _another_id], ids=["garbage", "dataset", "id"])
def test_fsck_reports_and_repairs_a_latest_json_that_matches_no_version(
    make_store: Callable[..., Store], tmp_path: Path, kind: str, damage: Callable[..., bytes]
) -> None:
    store = make_store(kind)
    store.commit("ds", write_tree(tmp_path / "v1", FILES))
    head = store.commit("ds", write_tree(tmp_path / "v2", {**FILES, "c": b"gamma"}))
    key = layout.latest_key("ds")
    raw = store.backend.get(key)[0]
    store.backend.put(key, damage(store, tmp_path, raw, head))

    reader = make_store(kind)
    report = reader.fsck()
    assert ("bad_latest", "ds") in _kinds(report), f"fsck did not report the bad latest.json: {report.problems}"
    assert not report.ok

    repaired = reader.fsck(repair=True)
    assert [(p.kind, p.repaired) for p in repaired.problems] == [("bad_latest", True)], repaired.problems
    check = reader.fsck()
    assert check.ok, check.problems
    assert make_store(kind).show("ds").id == head.id


@pytest.mark.parametrize("kind", ["s3", "file"])
@pytest.mark.parametrize(
    "damage",
    [
        _garbage,
        _another_datasets,
        _another_id,  # was served to readers: Store._head believed the Version embedded in the hint
    ],
    ids=["garbage", "dataset", "id"],
)
def test_readers_find_the_real_head_whatever_latest_json_says(
    make_store: Callable[..., Store], tmp_path: Path, kind: str, damage: Callable[..., bytes]
) -> None:
    store = make_store(kind)
    store.commit("ds", write_tree(tmp_path / "v1", FILES))
    head = store.commit("ds", write_tree(tmp_path / "v2", {**FILES, "c": b"gamma"}))
    key = layout.latest_key("ds")
    store.backend.put(key, damage(store, tmp_path, store.backend.get(key)[0], head))
    reader = make_store(kind)
    assert reader.show("ds").id == head.id
    assert reader.log("ds")[0].id == head.id


# ---------------------------------------------------------------------------- missing_listing


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_fsck_reports_a_missing_listing_and_repairs_it_from_the_worker_cache(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    writer = make_store(kind)
    first = writer.commit("ds", write_tree(tmp_path / "v1", FILES))
    second = writer.commit("ds", write_tree(tmp_path / "v2", {"only": b"in version two"}))
    assert first.is_dir
    writer.backend.delete(layout.object_key(first.md5))

    stranger = make_store(kind)  # a worker whose cache does not hold the listing
    report = stranger.fsck()
    assert ("missing_listing", "ds@1") in _kinds(report), f"fsck did not report the missing listing: {report.problems}"
    assert report.broken_versions == ["ds@1"] and not report.ok
    with pytest.raises(IntegrityError):
        stranger.pull("ds@1", tmp_path / "no")
    assert not stranger.fsck(repair=True).ok, "a worker without the listing claimed to repair it"

    repaired = writer.fsck(repair=True)  # the writer's cache holds the listing
    assert [(p.kind, p.ref, p.repaired) for p in repaired.problems] == [("missing_listing", "ds@1", True)]
    check = stranger.fsck(deep=True)
    assert check.ok, check.problems
    assert read_tree(stranger.pull("ds@1", tmp_path / "out1")) == FILES
    assert stranger.show("ds").id == second.id


# ---------------------------------------------------------------------------- bad_listing


def _forge_version(store: Store, dataset: str, listing: bytes) -> Version:
    """Write ``listing`` as a .dir object (so it matches its hash) and a version record naming it, as a
    buggy or hostile writer could."""
    oid = hashlib.md5(listing, usedforsecurity=False).hexdigest() + ".dir"
    store.backend.put(layout.object_key(oid), listing)
    head = store.show(dataset)
    out = head.pointer.out.model_copy(update={"md5": oid})
    record = head.model_copy(
        update={
            "number": head.number + 1,
            "parent": head.number,
            "id": uuid.uuid4(),
            "pointer": head.pointer.model_copy(update={"outs": [out]}),
        }
    )
    store.backend.create(layout.version_key(dataset, record.number), record.model_dump_json().encode())
    return record


GOOD_MD5 = hashlib.md5(b"alpha", usedforsecurity=False).hexdigest()
BAD_LISTINGS = {
    "not-a-list": json.dumps({"relpath": "a", "md5": GOOD_MD5}).encode(),
    "not-json": b"[{'relpath': 'a'",
    "no-md5": json.dumps([{"relpath": "a"}]).encode(),
    "bad-md5": json.dumps([{"relpath": "a", "md5": "not an md5"}]).encode(),
    "escaping-path": json.dumps([{"relpath": "../outside", "md5": GOOD_MD5}]).encode(),
    "duplicate-path": json.dumps([{"relpath": "a", "md5": GOOD_MD5}, {"relpath": "a", "md5": GOOD_MD5}]).encode(),
}


@pytest.mark.parametrize("kind", ["s3", "file"])
@pytest.mark.parametrize("listing", list(BAD_LISTINGS.values()), ids=list(BAD_LISTINGS))
def test_fsck_reports_a_listing_that_matches_its_hash_but_is_not_a_listing(
    make_store: Callable[..., Store], tmp_path: Path, kind: str, listing: bytes
) -> None:
    store = make_store(kind)
    store.commit("ds", write_tree(tmp_path / "v1", FILES))
    forged = _forge_version(store, "ds", listing)

    reader = make_store(kind)
    report = reader.fsck()
    assert ("bad_listing", forged.ref) in _kinds(report), f"fsck did not report the bad listing: {report.problems}"
    assert report.broken_versions == [forged.ref] and not report.ok
    assert not reader.fsck(repair=True).ok, "repair claimed to fix a listing it cannot fix"
    assert not store.fsck(deep=True, repair=True).ok
    with pytest.raises(GitfreeError):
        reader.pull(forged.ref, tmp_path / "no")
    assert not (tmp_path / "no").exists() or not any((tmp_path / "no").iterdir())
    assert read_tree(reader.pull("ds@1", tmp_path / "out1")) == FILES
