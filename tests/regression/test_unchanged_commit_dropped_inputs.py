"""A commit does what it says, or says what it did not do (issue: an unchanged commit silently dropped a
new ``--input``, so the lineage the caller asked for was lost)."""

from __future__ import annotations

from pathlib import Path

from helpers import write_tree

from gitfree import InputRef, Store


def test_new_inputs_make_a_new_version_without_uploading(store: Store, tmp_path: Path) -> None:
    store.commit("raw", write_tree(tmp_path / "raw1", {"r": b"1"}))
    store.commit("raw", write_tree(tmp_path / "raw2", {"r": b"2"}))
    data = write_tree(tmp_path / "features", {"f": b"same bytes"})
    first = store.commit("features", data, inputs=["raw@1"])
    objects = set(store.backend.list("files/md5/"))

    moved = store.commit("features", data, inputs=["raw@2"])
    assert moved.number == first.number + 1  # was: first, and raw@2 was lost
    assert first.created is True and moved.created is True
    again = store.commit("features", data, inputs=["raw@2"], message="a message that is not kept")
    assert again.created is False and again.number == moved.number and again == moved
    assert moved.inputs == [InputRef(dataset="raw", number=2)] and moved.md5 == first.md5
    assert set(store.backend.list("files/md5/")) == objects, "the same objects: nothing uploaded"
    assert store.show("features").inputs == [InputRef(dataset="raw", number=2)]
