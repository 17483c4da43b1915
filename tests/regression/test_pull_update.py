"""A destination holding, unmodified, an earlier version gitfree pulled there is updated without
overwrite (as ``dvc checkout`` does), rewriting only what changed; local edits still need overwrite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import InputError, Store

V1 = {
    "same.txt": b"same",
    "changed.txt": b"old",
    "gone.txt": b"bye",
    "dir/keep.txt": b"k",
    "dir/deep/gone.bin": b"\x00" * 10,
    "becomes_dir": b"a file first",
    "becomes_file/x": b"x",
}
V2 = {
    "same.txt": b"same",
    "changed.txt": b"new content",
    "added.txt": b"hi",
    "dir/keep.txt": b"k",
    "becomes_dir/inside.txt": b"now in a folder",
    "becomes_file": b"now a file",
}


def _versions(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "v1", V1))
    store.commit("ds", write_tree(tmp_path / "v2", V2))


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".gitfree")]


def test_update_without_overwrite_rewrites_only_what_changed(store: Store, tmp_path: Path) -> None:
    _versions(store, tmp_path)
    dest = store.pull("ds@1", tmp_path / "out" / "dest")
    same, keep, changed = (os.stat(dest / p) for p in ("same.txt", "dir/keep.txt", "changed.txt"))
    assert store.pull("ds@2", dest) == dest  # no overwrite needed
    assert read_tree(dest) == V2
    for path, before in (("same.txt", same), ("dir/keep.txt", keep)):
        after = os.stat(dest / path)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), path
    assert os.stat(dest / "changed.txt").st_ino != changed.st_ino
    assert not (dest / "dir" / "deep").exists()  # emptied folders are pruned
    assert _leftovers(dest.parent) == []
    # And back, and again onto the same version (a no-op).
    assert read_tree(store.pull("ds@1", dest)) == V1
    assert read_tree(store.pull("ds@2", dest)) == V2
    assert read_tree(store.pull("ds@2", dest)) == V2


def test_a_partial_pull_is_updated_too(store: Store, tmp_path: Path) -> None:
    _versions(store, tmp_path)
    dest = store.pull("ds@1", tmp_path / "dest", paths=["dir/"])
    assert read_tree(store.pull("ds@2", dest, paths=["dir/"])) == {"dir/keep.txt": b"k"}
    assert read_tree(store.pull("ds@2", dest)) == V2


def test_a_single_file_version_is_updated_in_one_rename(make_store: Callable[..., Store], tmp_path: Path) -> None:
    store = make_store("file")
    store.commit("model", write_tree(tmp_path / "a", {"m.bin": b"one"}) / "m.bin")
    store.commit("model", write_tree(tmp_path / "b", {"m.bin": b"two!"}) / "m.bin")
    dest = store.pull("model@1", tmp_path / "out" / "m.bin")
    assert store.pull("model@2", dest).read_bytes() == b"two!"
    dest.write_bytes(b"edited")
    with pytest.raises(InputError, match="holds other data"):
        store.pull("model@1", dest)
    assert dest.read_bytes() == b"edited"


EDITS: dict[str, Callable[[Path], object]] = {
    "modified": lambda d: (d / "same.txt").write_bytes(b"mine now"),
    "modified, same size": lambda d: (d / "changed.txt").write_bytes(b"OLD"),
    "added": lambda d: (d / "dir" / "notes.txt").write_bytes(b"my notes"),
    "added folder": lambda d: (d / "results").mkdir(),
    "removed": lambda d: (d / "gone.txt").unlink(),
    "a link": lambda d: (d / "link").symlink_to(d / "same.txt"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_local_edits_still_need_overwrite(store: Store, tmp_path: Path, edit: str) -> None:
    _versions(store, tmp_path)
    dest = store.pull("ds@1", tmp_path / "dest")
    EDITS[edit](dest)
    before = read_tree(dest)
    with pytest.raises(InputError, match=r"holds other data \(changed since gitfree pulled ds@1 there: .*"):
        store.pull("ds@2", dest)
    assert read_tree(dest) == before
    assert read_tree(store.pull("ds@2", dest, overwrite=True)) == V2
    assert _leftovers(tmp_path) == []


def test_data_gitfree_did_not_pull_there_still_needs_overwrite(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    writer = make_store("file")
    _versions(writer, tmp_path)
    # The same bytes as ds@1, but copied there by the user, or pulled by another worker cache.
    other = make_store("file")
    dest = other.pull("ds@1", tmp_path / "dest")
    with pytest.raises(InputError, match="holds other data"):
        writer.pull("ds@2", dest)
    assert read_tree(dest) == V1
