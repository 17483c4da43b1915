"""A worker killed between a step's commit and its note left a version no note named: the next call ran
the body again and, the output not being deterministic (a timestamp, a seed), committed a second version for
the same key. The next call now finds the head its key made and notes it instead of running."""

from __future__ import annotations

import uuid
from pathlib import Path

from helpers import write_tree

from gitfree import Store, step
from gitfree.versioning import layout


def test_the_unnoted_head_of_a_key_is_its_answer(store: Store, tmp_path: Path) -> None:
    store.commit("raw", write_tree(tmp_path / "raw", {"a.csv": b"hello"}))
    runs: list[int] = []

    @step("features", {"raw": "raw"}, store=store)
    def featurize(raw: Path, out: Path) -> None:
        runs.append(1)
        (out / "f.csv").write_text(str(uuid.uuid4()))

    first = featurize()
    for key in list(store.backend.list(layout.STEPS)):
        store.backend.delete(key)  # what a kill -9 after the commit, before the note, leaves
    again = featurize()
    assert (again.ref, again.id, len(runs)) == (first.ref, first.id, 1)
    assert [v.ref for v in store.log("features")] == ["features@1"]
    assert featurize(force=True).ref == "features@2"  # force still runs (and the data differs)
