"""A pull of an uploaded version whose objects GC deleted under it raised NotFoundError ("ds@3 was dropped by
garbage collection") instead of the IntegrityError every read raced by GC gives: when files were missing, the
read asked the store to learn the version's reference table again (for versions by reference, whose tables a
long-lived reader may have dropped), and that lookup's NotFoundError escaped. A fresh clone's run of
tests/test_concurrent_gc.py failed on it (its readers take no lease: a pull may fail, with IntegrityError, once
GC dropped the version). Now the lookup of a dropped version leaves the read to fail as it did."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import IntegrityError, Store


def test_a_pull_of_a_version_gc_dropped_under_it_is_missing_objects(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "writer")
    first = store.commit("ds", write_tree(tmp_path / "v1", {"a.txt": b"one"}))
    store.commit("ds", write_tree(tmp_path / "v2", {"a.txt": b"two"}))
    reader = Store(tmp_path / "store", cache_dir=tmp_path / "reader")
    assert [f.path for f in reader.files(first)] == ["a.txt"]  # the pull has its listing: then GC runs
    store.gc(keep_last=1, grace=timedelta(0))
    with pytest.raises(IntegrityError, match="missing"):
        reader.pull(first, tmp_path / "out")  # the version as resolved before GC dropped it
