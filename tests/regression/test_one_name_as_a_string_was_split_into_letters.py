"""One name given as a string was taken letter by letter: ``store.stale("images")`` said "dataset 'i' does not
exist", ``store.fsck(datasets="raw")`` and ``store.reindex("raw")`` the same of ``'r'``, ``store.heads("raw")``
answered for the datasets ``r``, ``a`` and ``w``, and ``store.set_stages("raw", "prod")`` recorded the stages
``p``, ``r``, ``o``, ``d`` (a str is an Iterable[str]). Found writing a lineage test of versions by reference
(issue 18). A string is now one name, as a list of one."""

from __future__ import annotations

from pathlib import Path

from helpers import write_tree

from gitfree import Store


def test_one_name_as_a_string_is_that_name(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    raw = store.commit("raw", write_tree(tmp_path / "raw", {"a.txt": b"1"}))
    store.commit("images", write_tree(tmp_path / "images", {"i.txt": b"1"}), inputs=[raw.ref])
    store.commit("raw", write_tree(tmp_path / "raw", {"a.txt": b"2"}))
    assert [s.ref for s in store.stale("images")] == [s.ref for s in store.stale(["images"])] == ["images@1"]
    assert store.fsck(datasets="raw").versions == store.fsck(datasets=["raw"]).versions == 2
    assert store.reindex("images", dry_run=True) == store.reindex(["images"], dry_run=True)
    assert list(store.heads("raw")) == ["raw"]
    assert store.set_stages("raw", "prod") == ["prod"]
    assert store.stages("raw") == ["prod"]
