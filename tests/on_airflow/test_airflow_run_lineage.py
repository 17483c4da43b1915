"""Lineage inside a DAG run (docs/design.md, "Lineage inside orchestrator runs"): a version pulled earlier in
the run is an input of what the run commits later, whichever task pulled it, through the run's notes in the
store. Real ``airflow dags test`` runs against SeaweedFS."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_tree
from on_airflow.airflow_helpers import AirflowEnv, skip_without_airflow

from gitfree import InputRef
from gitfree.versioning import layout

skip_without_airflow()
pytestmark = pytest.mark.timeout(600)


def _last_run(airflow_env: AirflowEnv) -> str:
    return str(airflow_env.query("SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 1")[0][0])


def test_pulled_versions_are_inputs_of_the_runs_commits_and_runs_do_not_mix(
    airflow_env: AirflowEnv, tmp_path: Path
) -> None:
    store = airflow_env.store()
    store.commit("demo/raw", write_tree(tmp_path / "raw1", {"r.csv": b"raw 1\n"}))
    store.commit("demo/raw", write_tree(tmp_path / "raw2", {"r.csv": b"raw 2\n"}))
    store.commit("demo/table", write_tree(tmp_path / "table", {"t.csv": b"table\n"}))
    raw1, raw2 = InputRef(dataset="demo/raw", number=1), InputRef(dataset="demo/raw", number=2)
    table = InputRef(dataset="demo/table", number=1)

    first = airflow_env.dags_test("gitfree_run_lineage", raw="demo/raw@1", work=str(tmp_path / "w1"))
    assert first.ok, first.output
    run = _last_run(airflow_env)
    assert ":" in run and "+" in run, run  # manual__2026-...T...+00:00
    assert store.show("demo/clean@1").inputs == [raw1, table]  # raw@1 given and pulled: one input
    assert store.show("demo/features@1").inputs == [raw1, table]
    assert store.show("demo/off@1").inputs == [table]  # auto_inputs=False: only what it names
    assert "Returned value was: ['demo/raw@1', 'demo/table@1']" in first.output
    key = f"airflow:gitfree_run_lineage:{run}"
    assert sorted(store.backend.list(layout.run_prefix(key))) == [
        layout.run_use_key(key, "demo/raw", 1),
        layout.run_use_key(key, "demo/table", 1),
    ]

    # Another run of the same DAG pulls raw@2, and features@1: its commits name raw@2, never the first
    # run's raw@1; features@1 is an input of clean@2, and the parent of features@2, not its input.
    second = airflow_env.dags_test(
        "gitfree_run_lineage", raw="demo/raw@2", work=str(tmp_path / "w2"), own="demo/features@1"
    )
    assert second.ok, second.output
    features1 = InputRef(dataset="demo/features", number=1)
    assert store.show("demo/features@2").inputs == [raw2, table]
    assert store.show("demo/clean@2").inputs == [raw2, features1, table]
    assert [v.number for v in store.log("demo/off")] == [1]  # same data, same inputs: unchanged
