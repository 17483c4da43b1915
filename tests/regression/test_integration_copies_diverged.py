"""The integrations each had their own copy of a size formatter, an event payload and a commit id.

Issue 14: the Prefect artifact wrote a size just under a unit as ``1024.0 KiB`` (the task's ``_human``;
the CLI had another), and the Prefect event ``gitfree.dataset.committed`` carried fewer fields than
the Airflow asset event about the same version (no ``created_at``, no ``message``). Now both come from
``gitfree.versioning``: ``format_size`` and ``version_event``. The commit ids a retry recomputes are
those of before (guards: a task retried across an upgrade still recognises its earlier attempt).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from on_prefect.prefect_helpers import committed_events, read_artifacts, wait_for
from prefect import flow, task
from prefect.context import TaskRunContext

from gitfree import Version, format_size
from gitfree.tasks import _runtime, artifact_key, commit_dataset

EVENT_FIELDS = {"ref", "dataset", "number", "store", "size", "nfiles", "md5", "version_id", "created_at", "message"}


@pytest.fixture(scope="module", autouse=True)
def _prefect_server(prefect_harness: None) -> None:
    """The process's temporary Prefect server (tests/conftest.py's ``prefect_harness``): real artifacts,
    events and task runs, nothing of Prefect replaced."""


def _committed(tmp_path: Path, dataset: str, size: int) -> Version:
    """``dataset`` committed by the ``commit_dataset`` task in a real flow run, from a file of ``size`` bytes."""
    src = tmp_path / f"src-{size}"
    src.mkdir()
    (src / "blob.bin").write_bytes(b"x" * size)
    store = (tmp_path / "store").as_uri()

    @flow(name="commit-for-the-artifact")
    def commit() -> Version:
        return commit_dataset(dataset, src, store=store, message="nightly")

    return commit()


@pytest.mark.parametrize(("size", "shown"), [(1023, "1023 B"), (1024, "1.0 KiB"), (1048575, "1.0 MiB")])
def test_the_artifact_never_says_1024_of_a_unit(tmp_path: Path, size: int, shown: str) -> None:
    dataset = f"sizes/s{size}-{uuid.uuid4().hex[:8]}"
    _committed(tmp_path, dataset, size)
    data = read_artifacts(artifact_key(dataset))[0].data
    [row] = json.loads(data) if isinstance(data, str) else data
    assert row["size"] == shown
    assert format_size(1048576) == "1.0 MiB" and format_size(2**40 - 1) == "1.0 TiB"  # the one formatter


def test_the_prefect_event_carries_what_the_airflow_asset_event_does(tmp_path: Path) -> None:
    dataset = f"events/e-{uuid.uuid4().hex[:8]}"
    version = _committed(tmp_path, dataset, 5)
    [event] = wait_for(lambda: committed_events(dataset))
    assert set(event.payload) == EVENT_FIELDS
    assert event.payload["created_at"] == version.created_at.isoformat()
    assert event.payload["message"] == "nightly"
    assert event.id == version.id


def test_the_prefect_commit_id_is_the_one_retries_computed_before() -> None:
    """Not a regression: the guard that the id of a task run's commit did not change (a real task run)."""

    @task
    def ids() -> tuple[uuid.UUID, uuid.UUID]:
        context = TaskRunContext.get()
        assert context is not None
        return context.task_run.id, _runtime.commit_id("raw/sales")

    @flow(name="commit-id-of-a-task-run")
    def run() -> tuple[uuid.UUID, uuid.UUID]:
        return ids()

    task_run_id, commit_id = run()
    assert commit_id == uuid.uuid5(uuid.UUID("6b0f7e43-5d0c-4c55-9b1e-6c8e3f0a9d21"), f"{task_run_id}/raw/sales")


def test_the_airflow_commit_id_is_the_one_retries_computed_before() -> None:
    """Not a regression: the guard that ``gitfree.airflow._runtime.commit_id``'s formula (the DAG id,
    run id, task label and dataset under Airflow's namespace) is what the kit computes."""
    from gitfree.versioning import stable_commit_id

    before = uuid.uuid5(
        uuid.UUID("3f4c1a52-9a0e-4c1b-8d57-0b7e3f1c2a64"), "etl/manual__2026-01-01T00:00:00+00:00/commit[3]/raw/sales"
    )
    assert stable_commit_id("airflow", "etl", "manual__2026-01-01T00:00:00+00:00", "commit[3]", "raw/sales") == before
    assert stable_commit_id("prefect", "etl", "raw") != stable_commit_id("airflow", "etl", "raw")
    with pytest.raises(ValueError, match="non-empty strings"):
        stable_commit_id("prefect")
