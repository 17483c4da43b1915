# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""`reindex raw` (and `fsck raw --repair`) removes the edge raw@1 -> model@1 when model@1's record is
unreadable, while a full `reindex` keeps it on purpose ('an unreadable record may name it: fsck reports the
record, not the edge'): with a dataset filter, the inventory has no entry for model, so lineage._unreadable()
is false. Restoring the record from a backup then leaves its downstream edge gone until a full reindex."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gitfree import Store
from gitfree.versioning import layout


def test_reindex_of_one_dataset_keeps_the_edge_of_an_unreadable_consumer(
    make_store: Callable[..., Store], src: Callable[[str], Path]
) -> None:
    store = make_store("file")
    store.commit("raw", src("r"))
    store.commit("model", src("m"), inputs=["raw@1"])
    good = store.backend.get(layout.version_key("model", 1))[0]
    store.backend.put(layout.version_key("model", 1), b'{"truncat')  # a torn record
    assert store.reindex().removed == []  # the whole store: kept, as designed
    assert [p.kind for p in store.fsck(datasets=["raw"]).problems] == []  # observed: orphan_edge
    assert store.reindex(["raw"]).removed == []  # observed: the edge removed
    store.backend.put(layout.version_key("model", 1), good)
    assert "model@1" in {n.id for n in store.lineage("raw@1", "down").nodes}
