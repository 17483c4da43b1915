"""The integrations each had their own copy of a size formatter, an event payload and a commit id.

Issue 14: the Prefect artifact wrote a size just under a unit as ``1024.0 KiB`` (the task's ``_human``;
the CLI had another), and the Prefect event ``gitfree.dataset.committed`` carried fewer fields than
the Airflow asset event about the same version (no ``created_at``, no ``message``). Now both come from
``gitfree.versioning``: ``format_size`` and ``version_event``. The commit ids a retry recomputes are
those of before (guards: a task retried across an upgrade still recognises its earlier attempt).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

import prefect.artifacts
import prefect.events

from gitfree import Version
from gitfree.tasks import _runtime

EVENT_FIELDS = {"ref", "dataset", "number", "store", "size", "nfiles", "md5", "version_id", "created_at", "message"}


def _version(size: int) -> Version:
    return Version.model_validate(
        {
            "dataset": "images",
            "number": 1,
            "id": uuid.uuid4(),
            "created_at": datetime.now(UTC),
            "message": "nightly",
            "pointer": {"outs": [{"md5": "0" * 32 + ".dir", "size": size, "nfiles": 2, "path": "images"}]},
            "size": size,
            "nfiles": 2,
        }
    )


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    seen: dict[str, list[dict[str, Any]]] = {"artifacts": [], "events": []}
    monkeypatch.setattr(prefect.artifacts, "create_table_artifact", lambda **kw: seen["artifacts"].append(kw))
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kw: seen["events"].append(kw))
    return seen


@pytest.mark.parametrize(
    ("size", "shown"),
    [(1023, "1023 B"), (1024, "1.0 KiB"), (1048575, "1.0 MiB"), (1048576, "1.0 MiB"), (2**40 - 1, "1.0 TiB")],
)
def test_the_artifact_never_says_1024_of_a_unit(
    published: dict[str, list[dict[str, Any]]], size: int, shown: str
) -> None:
    _runtime.publish(SimpleNamespace(url="s3://b/p"), _version(size))  # type: ignore[arg-type]
    [artifact] = published["artifacts"]
    assert artifact["table"][0]["size"] == shown


def test_the_prefect_event_carries_what_the_airflow_asset_event_does(
    published: dict[str, list[dict[str, Any]]],
) -> None:
    version = _version(5)
    _runtime.publish(SimpleNamespace(url="s3://b/p"), version)  # type: ignore[arg-type]
    [event] = published["events"]
    assert set(event["payload"]) == EVENT_FIELDS
    assert event["payload"]["created_at"] == version.created_at.isoformat()
    assert event["payload"]["message"] == "nightly"
    assert event["id"] == version.id


def test_the_prefect_commit_id_is_the_one_retries_computed_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a regression: the guard that the id of a task run's commit did not change."""
    task_run_id = uuid.uuid4()
    task = SimpleNamespace(task_run=SimpleNamespace(id=task_run_id, flow_run_id=None))
    monkeypatch.setattr(_runtime, "_contexts", lambda: (None, task))
    before = uuid.uuid5(uuid.UUID("6b0f7e43-5d0c-4c55-9b1e-6c8e3f0a9d21"), f"{task_run_id}/raw/sales")
    assert _runtime.commit_id("raw/sales") == before


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
