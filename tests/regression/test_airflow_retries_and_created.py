"""Airflow operators fail at once on errors no retry can fix, retry the others, and say ``created``.

Issue "Trust", item 6 in part: only InputError, NotFoundError and UnsafePathError became
``AirflowFailException``; wrong credentials (ConfigError) and a corrupted object (IntegrityError) used
every retry of the task. Now :func:`gitfree.versioning.errors.is_transient` decides, as for the Prefect
tasks. Also: the commit operator's XCom says ``created`` as ``Version.created`` does.

Real ``airflow dags test`` runs (Airflow 3.3 on SQLite, the DAGs of tests/on_airflow/dags) against the
session's SeaweedFS. They need Airflow, so they run in ``.venv-airflow`` and skip in the main ``.venv``:
``.venv-airflow/bin/pytest tests/regression/test_airflow_retries_and_created.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_tree
from on_airflow.airflow_helpers import AirflowEnv, skip_without_airflow

from gitfree.testing import free_port

skip_without_airflow()
pytestmark = pytest.mark.timeout(600)

# The Airflow fixtures (a migrated database per session, a fresh AIRFLOW_HOME per test) of tests/on_airflow.
from on_airflow import conftest as _fixtures  # noqa: E402 - after the skip, as a plain module

migrated_db = _fixtures.migrated_db
airflow_env = _fixtures.airflow_env


def _tries(env: AirflowEnv, dag_id: str, task_id: str) -> tuple[int, str]:
    """The try number and state of the task in the DAG's newest run."""
    [(tries, state)] = env.query(
        "SELECT ti.try_number, ti.state FROM task_instance ti "
        "JOIN dag_run r ON r.run_id = ti.run_id AND r.dag_id = ti.dag_id "
        "WHERE ti.dag_id = ? AND ti.task_id = ? ORDER BY r.id DESC LIMIT 1",
        dag_id,
        task_id,
    )
    return int(tries), str(state)


def _connection(env: AirflowEnv, **changes: object) -> None:
    conn = json.loads(env.connections["gitfree_default"])
    for key, value in changes.items():
        if key == "endpoint_url":
            conn["extra"]["endpoint_url"] = value
        else:
            conn[key] = value
    env.connections["gitfree_default"] = json.dumps(conn)


def test_wrong_credentials_fail_the_task_without_retrying(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    airflow_env.store().commit("demo/locked", write_tree(tmp_path / "src", {"a": b"1"}))
    wrong = "wr0ng-s3cret-" + airflow_env.seaweedfs.secret_key[-6:]
    airflow_env.secrets.append(wrong)
    _connection(airflow_env, password=wrong)
    run = airflow_env.dags_test("gitfree_retries", ref="demo/locked@1", dest=str(tmp_path / "out"))
    assert not run.ok
    assert "AirflowFailException: gitfree:" in run.output
    assert "denied access" in run.output
    assert _tries(airflow_env, "gitfree_retries", "pull") == (1, "failed")


def test_a_corrupted_object_fails_the_task_without_retrying(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    store = airflow_env.store()
    version = store.commit("demo/corrupt", write_tree(tmp_path / "src", {"a": b"the real bytes"}))
    [entry] = store.files(version)
    store.backend.put(f"files/md5/{entry.md5[:2]}/{entry.md5[2:]}", b"other bytes")
    run = airflow_env.dags_test("gitfree_retries", ref="demo/corrupt@1", dest=str(tmp_path / "out"))
    assert not run.ok
    assert "AirflowFailException: gitfree:" in run.output
    assert "does not match its hash" in run.output
    assert _tries(airflow_env, "gitfree_retries", "pull") == (1, "failed")


def test_a_missing_version_fails_the_task_without_retrying(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    """Not a regression (NotFoundError failed fast before too): the guard that it still does."""
    run = airflow_env.dags_test("gitfree_retries", ref="demo/absent@1", dest=str(tmp_path / "out"))
    assert not run.ok
    assert "AirflowFailException: gitfree: dataset 'demo/absent' does not exist" in run.output
    assert _tries(airflow_env, "gitfree_retries", "pull") == (1, "failed")


def test_an_unreachable_endpoint_uses_the_tasks_retries(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    """Not a regression (retried before too): the guard that a network failure still uses the retries."""
    _connection(airflow_env, endpoint_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    run = airflow_env.dags_test("gitfree_retries", ref="demo/any@1", dest=str(tmp_path / "out"))
    assert not run.ok
    assert "cannot reach the S3 endpoint" in run.output
    assert "AirflowFailException" not in run.output
    assert _tries(airflow_env, "gitfree_retries", "pull") == (3, "failed")


def test_the_commit_operator_says_created_then_unchanged(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"a.csv": b"x,1\n"})
    first = airflow_env.dags_test("gitfree_commit_created", source=str(source))
    assert first.ok, first.output
    again = airflow_env.dags_test("gitfree_commit_created", source=str(source))
    assert again.ok, again.output
    assert "no asset event: demo/created is unchanged since demo/created@1" in again.output
    xcoms = [
        json.loads(value)
        for (value,) in airflow_env.query(
            "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id "
            "WHERE x.dag_id = 'gitfree_commit_created' AND x.task_id = 'commit' AND x.key = 'return_value' "
            "ORDER BY r.id"
        )
    ]
    assert [(x["ref"], x["created"], x["new"]) for x in xcoms] == [
        ("demo/created@1", True, True),
        ("demo/created@1", False, False),
    ]
    metrics = airflow_env.store().show("demo/created@1").metrics
    assert metrics == {"rows": 42, "loss": 0.25} and type(metrics["rows"]) is int  # rendered text, read as numbers
