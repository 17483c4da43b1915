# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""GC deletes the edge raw@1 -> features@1 of a dropped features@1 while a kept model@1 made from features@1
is not yet (or no longer) among features@1's edges; nothing puts it back: downstream lineage of raw@1 never
finds model@1 again, fsck is green and reindex writes nothing. Upstream of model@1 still shows raw@1."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from gitfree import Store
from gitfree.faults import Faults
from gitfree.versioning import layout


def _pipeline(store, src):
    store.commit("raw", src("raw 1"))
    store.commit("features", src("features 1"), inputs=["raw@1"])
    store.commit("features", src("features 2"), inputs=["raw@1"])  # features@1 is no longer the newest


def _assert_lineage_consistent(store):
    assert [n.id for n in store.lineage("model@1").nodes] == ["model@1", "features@1", "raw@1"]
    store.reindex()
    assert store.fsck().ok
    down = {n.id for n in store.lineage("raw@1", "down").nodes}
    assert "model@1" in down, f"raw@1's downstream lost model@1 for good: {sorted(down)}"


def test_gc_while_a_consumer_of_the_dropped_version_is_being_committed(
    make_store: Callable[..., Store], kind: str, src: Callable[[str], Path]
) -> None:
    """The usual case: a training job resolved features@1 and is hashing/uploading when the nightly GC runs."""
    store, worker = make_store(kind), make_store(kind)
    _pipeline(store, src)
    with Faults(worker) as faults:
        held = faults.pause("create", "leases/")  # inputs resolved, data staged, the lease not yet taken
        done = []
        job = threading.Thread(
            target=lambda: done.append(worker.commit("model", src("model 1"), inputs=["features@1"]))
        )
        job.start()
        assert held.reached.wait(60)
        assert store.gc(keep_last=1).versions_deleted == ["features@1"]
        held.resume.set()
        job.join(60)
    assert done and done[0].ref == "model@1"
    _assert_lineage_consistent(store)


def test_gc_between_a_commits_record_and_its_edge(
    make_store: Callable[..., Store], kind: str, src: Callable[[str], Path]
) -> None:
    store, worker = make_store(kind), make_store(kind)
    _pipeline(store, src)
    with Faults(worker) as faults:
        held = faults.pause("create", "datasets/features/used-by/")  # step 11 of model@1's commit
        job = threading.Thread(target=lambda: worker.commit("model", src("model 1"), inputs=["features@1"]))
        job.start()
        assert held.reached.wait(60)
        assert store.gc(keep_last=1).versions_deleted == ["features@1"]
        held.resume.set()
        job.join(60)
    _assert_lineage_consistent(store)


def test_gc_after_a_commit_killed_before_its_edge(
    make_store: Callable[..., Store], kind: str, src: Callable[[str], Path]
) -> None:
    """kill -9 between model@1's record and its edge (same keys as a real kill), then the nightly GC, then reindex."""
    store = make_store(kind)
    _pipeline(store, src)
    store.commit("model", src("model 1"), inputs=["features@1"])
    store.backend.delete(layout.used_by_key("features", 1, "model", 1))  # the edge the killed commit never wrote
    assert store.gc(keep_last=1).versions_deleted == ["features@1"]
    _assert_lineage_consistent(store)
