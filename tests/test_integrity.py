"""Hostile records and corrupted bytes: refused before anything is written, never materialised.

Corrupted objects and listings on S3, Azurite and fake-gcs-server; hostile records on S3 and a local directory
(their checks are the records' and paths', the same code on every kind of store)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from figures import Figures
from helpers import REMOTE_KINDS, read_tree, write_tree

from gitfree import InputError, IntegrityError, Store, UnsafePathError, Version
from gitfree.versioning import layout


def _forge_version(store: Store, dataset: str, entries: list[dict[str, str]]) -> Version:
    """Write a .dir listing and a version record naming it, as a hostile or buggy writer could."""
    raw = json.dumps(entries, sort_keys=True).encode()
    md5 = hashlib.md5(raw).hexdigest() + ".dir"
    store.backend.put(layout.object_key(md5), raw)
    head = store.show(dataset)
    record = head.model_copy(
        update={
            "number": head.number + 1,
            "parent": head.number,
            "id": uuid.uuid4(),
            "pointer": head.pointer.model_copy(update={"outs": [head.pointer.out.model_copy(update={"md5": md5})]}),
        }
    )
    store.backend.create(layout.version_key(dataset, record.number), record.model_dump_json().encode())
    return record


@pytest.mark.parametrize(
    "evil",
    ["../escape", "../../etc/passwd", "/etc/passwd", "a/../../b", "a\\..\\b", "a/./b", "x\x00y", "", "C:/windows"],
)
def test_paths_that_escape_the_destination_are_refused(
    store: Store, tmp_path: Path, evil: str, figures: Figures
) -> None:
    src = write_tree(tmp_path / "src", {"ok.txt": b"fine"})
    good = store.commit("ds", src)
    good_md5 = store.files(good)[0].md5
    _forge_version(store, "ds", [{"md5": good_md5, "relpath": "ok.txt"}, {"md5": good_md5, "relpath": evil}])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafePathError, match="refusing to write anything"):
        store.pull("ds", tmp_path / "out" / "dest")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "cache" not in str(p)) == [
        p for p in before if "cache" not in str(p)
    ]
    figures.count("8. hostile records", "listings naming a path outside the destination, refused, 0 files written")


def test_duplicate_and_clashing_paths_are_refused(store: Store, tmp_path: Path, figures: Figures) -> None:
    src = write_tree(tmp_path / "src", {"a": b"1"})
    good = store.commit("ds", src)
    md5 = store.files(good)[0].md5
    _forge_version(store, "ds", [{"md5": md5, "relpath": "a"}, {"md5": md5, "relpath": "a"}])
    with pytest.raises(UnsafePathError, match="twice"):
        store.pull("ds", tmp_path / "d1")
    _forge_version(store, "ds", [{"md5": md5, "relpath": "a"}, {"md5": md5, "relpath": "a/b"}])
    with pytest.raises(UnsafePathError, match="both as a file and as a directory"):
        store.pull("ds", tmp_path / "d2")
    assert not (tmp_path / "d1").exists() and not (tmp_path / "d2").exists()
    figures.count("8. hostile records", "listings with duplicate or file/dir-clashing paths, refused")


def test_a_symlink_inside_the_destination_is_never_written_through(
    store: Store, tmp_path: Path, figures: Figures
) -> None:
    """dest/sub links outside; the version has sub/x. Nothing may land in the link's target."""
    outside = write_tree(tmp_path / "outside", {"x": b"precious"})
    version = store.commit("ds", write_tree(tmp_path / "src", {"sub/x": b"new", "y": b"y"}))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InputError, match="holds other data"):
        store.pull(version, dest)
    assert read_tree(outside) == {"x": b"precious"}
    store.pull(version, dest, overwrite=True)
    assert read_tree(outside) == {"x": b"precious"}
    assert not (dest / "sub").is_symlink() and read_tree(dest) == {"sub/x": b"new", "y": b"y"}
    # Pulled again onto itself: recognised as at-version, and still nothing outside changes.
    (dest / "sub").rename(tmp_path / "moved")
    (dest / "sub").symlink_to(tmp_path / "moved", target_is_directory=True)
    with pytest.raises(InputError, match="holds other data"):
        store.pull(version, dest)
    figures.count("8. hostile records", "symlinked directories inside the destination, never written through")


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_object_corrupted_on_the_remote_is_never_materialised(
    make_store: Callable[..., Store], tmp_path: Path, figures: Figures, kind: str
) -> None:
    writer = make_store(kind)
    src = write_tree(tmp_path / "src", {"a.txt": b"original", "b.txt": b"other"})
    version = writer.commit("ds", src)
    victim = next(f for f in writer.files(version) if f.path == "a.txt")
    writer.backend.put(layout.object_key(victim.md5), b"tampered")

    reader = make_store(kind)
    with pytest.raises(IntegrityError, match="does not match its hash"):
        reader.pull("ds", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gitfree")]  # no staging folder left
    assert not (reader.cache_dir / layout.object_key(victim.md5)).exists()
    quick = reader.fsck()  # by the listing's md5: S3's and GCS's ETag, Azure's Content-MD5 (its ETag is none)
    assert (quick.ok, quick.unverified) == (False, 0), quick
    assert [p.key for p in reader.fsck(deep=True).problems] == [layout.object_key(victim.md5)]
    figures.count("8. hostile records", "objects corrupted on the remote, never materialised")


def test_object_corrupted_in_the_worker_cache_is_never_materialised(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"original"})
    store.commit("ds", src)
    cached = store.cache_dir / layout.object_key(store.files("ds")[0].md5)
    cached.chmod(0o644)
    cached.write_bytes(b"bitrot!!")
    with pytest.raises(IntegrityError, match="does not match its hash"):
        store.pull("ds", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert not cached.exists()  # dropped, so the next pull fetches a good copy
    assert read_tree(store.pull("ds", tmp_path / "dest")) == {"a.txt": b"original"}


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_corrupted_listing_is_refused(make_store: Callable[..., Store], tmp_path: Path, kind: str) -> None:
    writer = make_store(kind)
    version = writer.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    writer.backend.put(layout.object_key(version.md5), b'[{"md5": "0000", "relpath": "a"}]')
    with pytest.raises(IntegrityError, match="does not match its hash"):
        make_store(kind).pull("ds", tmp_path / "dest")


@pytest.mark.parametrize("content", [b"", b'{"format": 1, "dataset": "ds", "num', b"not json", b'{"format": 1}', b"[]"])
def test_truncated_or_invalid_records_name_the_key(
    store: Store, tmp_path: Path, content: bytes, figures: Figures
) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    key = layout.version_key("ds", 2)
    store.backend.put(key, content)
    with pytest.raises(IntegrityError, match=key.replace(".", r"\.")):
        store.show("ds@2")
    figures.count("8. hostile records", "truncated or invalid records, IntegrityError naming the key")


def test_record_from_a_newer_format_asks_for_an_upgrade(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    # Format 2 is a version by reference (docs/design.md, "Versions by reference"): 3 is newer than this gitfree.
    store.backend.put(layout.version_key("ds", 2), b'{"format": 3, "dataset": "ds"}')
    with pytest.raises(IntegrityError, match="upgrade gitfree"):
        store.show("ds@2")


@pytest.mark.parametrize("evil", ["../x", "/etc/passwd", "a/../../b", "..\\x", "x\x00y", ".."])
def test_version_record_naming_an_unsafe_output_path_is_refused(
    store: Store, tmp_path: Path, evil: str, figures: Figures
) -> None:
    """A single-file version is written as ``dest/<out.path>``: a record naming ``../x`` must not escape."""
    good = store.commit("ds", write_tree(tmp_path / "src", {"f": b"1"}) / "f")
    raw = json.loads(good.model_dump_json())
    raw.update(number=2, parent=1, id=str(uuid.uuid4()))
    raw["pointer"]["outs"][0]["path"] = evil
    key = layout.version_key("ds", 2)
    store.backend.create(key, json.dumps(raw).encode())
    (tmp_path / "dest").mkdir()
    with pytest.raises(IntegrityError, match=key.replace(".", r"\.")):
        store.pull("ds@2", tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith("cache")} <= {"dest", "src", "file-store"}
    figures.count("8. hostile records", "version records naming an unsafe output path, IntegrityError, 0 files written")
