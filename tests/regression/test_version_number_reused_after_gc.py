"""A version number is never reused (issue: four writers were each told ``committed shared@5``).

GC used to delete a dropped version's record; a writer whose head read predated the deletion then
created the same number again with ``If-None-Match: *``, and ``shared@5`` came to mean other data.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import NotFoundError, Store


def test_a_writer_with_a_stale_head_never_reuses_a_dropped_number(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1, 4):
        store.commit("shared", write_tree(tmp_path / f"v{i}", {"f": f"data {i}".encode()}))
    stale = store.show("shared@1")  # what a writer saw before versions 2 and 3 were committed
    store.gc(keep_last=1, grace=timedelta(0))  # drops 1 and 2

    monkeypatch.setattr(store.catalog, "head", lambda dataset: stale)
    mine = store.commit("shared", write_tree(tmp_path / "mine", {"f": b"mine"}))
    monkeypatch.undo()

    assert mine.number == 4
    assert read_tree(store.pull(f"shared@{mine.number}", tmp_path / "out")) == {"f": b"mine"}
    with pytest.raises(NotFoundError, match=r"shared@2 was dropped by garbage collection on \d{4}-\d\d-\d\d"):
        store.show("shared@2")


def test_latest_back_counts_the_versions_that_exist(store: Store, tmp_path: Path) -> None:
    for i in range(1, 9):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": f"data {i}".encode()}))
    store.tag("ds@1", "first")
    store.gc(keep_last=2, grace=timedelta(0))  # keeps 1 (tagged), 7, 8
    assert store.show("ds@latest~1").number == 7
    assert store.show("ds@latest~2").number == 1
    with pytest.raises(NotFoundError, match=r"has 3 versions \(1, 7 and 8\)"):
        store.show("ds@latest~3")
    with pytest.raises(NotFoundError, match=r"has no version 12; it has 3 versions \(1, 7 and 8\)"):
        store.show("ds@12")
