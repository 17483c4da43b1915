"""A version number is never reused (issue: four writers were each told ``committed shared@5``).

GC used to delete a dropped version's record; a writer whose head read predated the deletion then
created the same number again with ``If-None-Match: *``, and ``shared@5`` came to mean other data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import kind_of, read_tree, write_tree

from gitfree import NotFoundError, Store
from gitfree.testing import Faults
from gitfree.versioning import layout


def test_a_writer_with_a_stale_head_never_reuses_a_dropped_number(
    store: Store, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """The writer reads its head (version 1), then stalls before its lease while another worker commits
    versions 2 and 3 and a GC drops 1 and 2: the numbers the writer would take next hold tombstones."""
    store.commit("shared", write_tree(tmp_path / "v1", {"f": b"data 1"}))
    other = make_store(kind_of(store))
    with Faults(store) as faults:
        read_head = faults.pause("create", layout.LEASES)  # Commit step 5, after the head was read
        writer, out = _in_thread(lambda: store.commit("shared", write_tree(tmp_path / "mine", {"f": b"mine"})))
        assert read_head.reached.wait(60), out
        for i in (2, 3):
            other.commit("shared", write_tree(tmp_path / f"v{i}", {"f": f"data {i}".encode()}))
        assert other.gc(keep_last=1, grace=timedelta(0)).versions_deleted == ["shared@1", "shared@2"]
        read_head.resume.set()
        writer.join(60)
    mine = out["value"]

    assert mine.number == 4
    assert read_tree(store.pull(f"shared@{mine.number}", tmp_path / "out")) == {"f": b"mine"}
    with pytest.raises(NotFoundError, match=r"shared@2 was dropped by garbage collection on \d{4}-\d\d-\d\d"):
        store.show("shared@2")


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


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
