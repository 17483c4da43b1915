# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""Store.commit(inputs=[InputRef(...)]) takes the InputRef as it is: its dataset is neither validated as a
dataset name nor resolved (design, Commit step 1: 'each input ref, resolved against the store (NotFoundError
if missing)'). On a file store, step 11 then writes the reverse edge outside the store's directory, upstream
lineage reads records outside it, and fsck is red for good (fsck --repair says it repaired it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from gitfree import GitfreeError, Store
from gitfree.versioning.models import InputRef


def test_an_input_dataset_with_dotdot_writes_outside_the_store(
    make_store: Callable[..., Store], src: Callable[[str], Path], tmp_path: Path
) -> None:
    store = make_store("file")
    with pytest.raises(ValidationError, match="invalid dataset name"):
        store.commit("model", src("m"), inputs=[InputRef(dataset="../../escaped", number=1)])
    outside = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("escaped/**/*.json"))
    assert outside == [], f"gitfree wrote outside its store {store.backend.root}: {outside}"


def test_an_input_that_does_not_exist_is_refused(make_store: Callable[..., Store], src: Callable[[str], Path]) -> None:
    store = make_store("file")
    store.commit("raw", src("r"))
    with pytest.raises(GitfreeError):  # observed: model@1 committed, made from raw@7 that never existed
        store.commit("model", src("m"), inputs=[InputRef(dataset="raw", number=7)])


def test_reindex_of_a_store_with_a_forged_record_writes_outside_it(
    make_store: Callable[..., Store], src: Callable[[str], Path], tmp_path: Path
) -> None:
    """Anyone who can write one record into a shared file store makes the next `gitfree reindex` (or
    `fsck --repair`) of whoever runs it create directories and a file at a path of their choice."""
    from gitfree.versioning import layout

    store = make_store("file")
    version = store.commit("model", src("m"))
    target = tmp_path / "anywhere" / "pwned"
    hops = "../" * len(store.backend.root.parts)
    record = json.loads(version.model_dump_json(exclude={"created"}))
    record["inputs"] = [{"dataset": f"{hops}{str(target).lstrip('/')}", "number": 1, "store": None}]
    store.backend.put(layout.version_key("model", 1), json.dumps(record).encode())  # forged by hand
    store.reindex()  # the forged record is unreadable (a bad_record for fsck), and nothing is written for it
    assert not target.exists(), sorted(p.as_posix() for p in target.rglob("*"))
