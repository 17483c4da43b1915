"""One bad record never blocks the rest (issue: a record that did not parse broke ``log``, later commits of
its dataset and ``gc`` of the whole store; a ``loss=nan`` metric written as ``null`` was such a record)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import InputError, Store
from gitfree.versioning import layout


def _history(store: Store, tmp_path: Path) -> None:
    for i in range(1, 5):
        store.commit("ds", write_tree(tmp_path / f"ds{i}", {"f": f"ds {i}".encode()}))
    for i in range(1, 4):
        store.commit("other", write_tree(tmp_path / f"o{i}", {"f": f"other {i}".encode()}))


@pytest.mark.parametrize(
    "damage",
    [b"", b'{"format": 1, "dataset": "ds", "num', b"not json at all", None],
    ids=["empty", "truncated", "garbage", "null-metric"],
)
def test_a_broken_record_is_stepped_over(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes | None
) -> None:
    _history(store, tmp_path)
    key = layout.version_key("ds", 3)
    if damage is None:  # what an older gitfree wrote for metrics={"loss": nan}
        raw, _ = store.backend.get(key)
        damage = raw.replace(b'"metrics": {}', b'"metrics": {"loss": null}')
        assert b"null" in damage
    store.backend.put(key, damage)

    with caplog.at_level(logging.WARNING, logger="gitfree"):
        assert [v.number for v in store.log("ds")] == [4, 2, 1]
    assert any("ds@3" in r.getMessage() for r in caplog.records), "log warns about the record it skipped"
    assert read_tree(store.pull("ds@2", tmp_path / "out2")) == {"f": b"ds 2"}
    assert store.show("ds@latest~1").number == 2
    assert store.commit("ds", write_tree(tmp_path / "ds5", {"f": b"ds 5"})).number == 5

    report = store.gc(keep_last=1, grace=timedelta(0))
    assert report.unreadable_records == [key]
    assert sorted(report.versions_deleted) == ["other@1", "other@2"], "the broken dataset drops nothing"
    for n in (1, 2, 4, 5):
        assert read_tree(store.pull(f"ds@{n}", tmp_path / f"after{n}")) == {"f": f"ds {n}".encode()}
    problems = store.fsck().problems
    assert [(p.kind, p.key) for p in problems] == [("bad_record", key)]


def test_a_metric_that_is_not_a_number_is_refused_before_upload(store: Store, tmp_path: Path) -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(InputError, match="loss"):
            store.commit("ds", write_tree(tmp_path / "d", {"f": b"1"}), metrics={"loss": bad})
    assert not list(store.backend.list("files/")), "nothing was uploaded"
    assert store.datasets() == []


def test_a_record_cut_before_its_listing_suffix_still_keeps_the_listing_files(store: Store, tmp_path: Path) -> None:
    """What a truncated record names is kept, even when it was cut between a listing's md5 and ``.dir``:
    a file it shares with a version being dropped elsewhere must survive."""
    shared = {"shared.bin": b"in both datasets", "own.txt": b"only ds"}
    store.commit("other", write_tree(tmp_path / "o1", {"shared.bin": b"in both datasets"}))
    store.commit("other", write_tree(tmp_path / "o2", {"x": b"newer"}))
    ds = store.commit("ds", write_tree(tmp_path / "d1", shared))
    store.commit("ds", write_tree(tmp_path / "d2", {"f": b"2"}))
    key = layout.version_key("ds", ds.number)
    raw, _ = store.backend.get(key)
    store.backend.put(key, raw[: raw.index(b".dir")])  # cut just before the suffix
    report = store.gc(keep_last=1, grace=timedelta(0))
    assert report.versions_deleted == ["other@1"] and report.sweep_skipped is None
    # The record is broken, but its data is all there: put the record back and pull it.
    store.backend.put(key, raw)
    assert store.fsck().ok
    reader = Store(settings=store.settings, cache_dir=tmp_path / "fresh")  # another worker: nothing cached
    assert read_tree(reader.pull(f"ds@{ds.number}", tmp_path / "out")) == shared
