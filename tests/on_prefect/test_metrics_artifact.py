"""The artifact of a new version shows its metrics with their deltas against its parent, in a real flow on a real
Prefect server, against SeaweedFS; a parent garbage collection dropped (or a record that cannot be read) gives no
deltas and says why, and the version is still committed and published."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree
from on_prefect.prefect_helpers import read_artifacts
from prefect import flow

from gitfree import Store
from gitfree.tasks import artifact_key, commit_dataset
from gitfree.testing import Faults
from gitfree.versioning import layout


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


def _row(dataset: str) -> dict[str, Any]:
    """The row of the newest artifact of ``dataset``."""
    artifacts = read_artifacts(artifact_key(dataset))
    assert artifacts
    data = artifacts[0].data
    rows = json.loads(data) if isinstance(data, str) else data
    assert isinstance(rows, list) and len(rows) == 1
    return dict(rows[0])


def _ingest(store: Store, dataset: str, src: Path) -> Callable[[dict[str, int | float]], int]:
    @flow(name="train-and-commit")
    def ingest(metrics: dict[str, int | float]) -> int:  # (a flow coerces its parameters to their types)
        write_tree(src, {"model.bin": json.dumps(metrics).encode()})
        return commit_dataset(dataset, src, store=store, metrics=metrics).number

    return ingest


def test_the_artifact_shows_metric_deltas_against_the_parent(store: Store, dataset: str, tmp_path: Path) -> None:
    ingest = _ingest(store, dataset, tmp_path / "src")
    assert ingest({"acc": 0.89, "rows": 100, "old": 1}) == 1
    first = _row(dataset)
    assert first["version"] == f"{dataset}@1" and first["metrics"] == "acc 0.89; old 1; rows 100 (first version)"

    assert ingest({"acc": 0.91, "rows": 100, "f1": 0.5}) == 2
    second = _row(dataset)
    assert second["version"] == f"{dataset}@2"
    assert second["metrics"] == (
        f"acc 0.89 → 0.91 (+0.02, +2.2%); f1 0.5 (added); old removed (was 1); rows 100 (unchanged) vs {dataset}@1"
    )


def test_a_parent_dropped_between_the_commit_and_its_artifact_gives_no_deltas(
    store: Store, make_store: Callable[..., Store], dataset: str, tmp_path: Path
) -> None:
    ingest = _ingest(store, dataset, tmp_path / "src")
    ingest({"acc": 0.1})
    ingest({"acc": 0.2})
    janitor = make_store("s3")
    with Faults(store) as faults:
        # Commit step 10 (advancing latest.json) comes after the record: a GC run then keeps only the new version.
        gc = faults.call(
            ["create", "replace"],
            layout.latest_key(dataset),
            lambda _: janitor.gc(keep_last=1, grace=timedelta(0)),
            times=1,
        )
        assert ingest({"acc": 0.3}) == 3
    assert gc.fired
    row = _row(dataset)
    assert row["version"] == f"{dataset}@3"
    assert row["metrics"].startswith(f"acc 0.3 (no deltas: {dataset}@2 was dropped by garbage collection on ")
    assert row["changes"].startswith(f"not compared: {dataset}@2 was dropped by garbage collection")


def test_a_parent_whose_record_cannot_be_read_gives_no_deltas(store: Store, dataset: str, tmp_path: Path) -> None:
    ingest = _ingest(store, dataset, tmp_path / "src")
    ingest({"acc": 0.1})
    ingest({"acc": 0.2})
    store.backend.put(layout.version_key(dataset, 2), b'{"format": 1, "trunc')
    assert ingest({"acc": 0.3}) == 3  # the number of the unreadable record stays taken; its parent is 2
    row = _row(dataset)
    assert row["metrics"].startswith("acc 0.3 (no deltas: the record ") and "is not valid JSON" in row["metrics"]


def test_the_artifact_links_to_the_version_page_when_gitfree_ui_url_is_set(
    store: Store, dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = _ingest(store, dataset, tmp_path / "src")
    ingest({"acc": 0.1})
    assert "page" not in _row(dataset)  # not set: no link
    monkeypatch.setenv("GITFREE_UI_URL", "http://data.example:8765/")
    ingest({"acc": 0.2})
    row = _row(dataset)
    assert row["page"] == f"http://data.example:8765/v/{dataset}@2"
    artifact = read_artifacts(artifact_key(dataset))[0]
    assert f"[{dataset}@2 in gitfree ui](http://data.example:8765/v/{dataset}@2)" in artifact.description
    monkeypatch.setenv("GITFREE_UI_URL", "javascript:alert(1)")
    ingest({"acc": 0.3})
    assert "page" not in _row(dataset)  # never a link that is not http(s)
