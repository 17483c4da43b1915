"""A DAG whose commits record, without being told, the versions pulled earlier in the same DAG run.

Run by tests/on_airflow/test_airflow_run_lineage.py with ``airflow dags test`` (a manual run id:
``manual__<time>+00:00``).
Paths and refs come from the run's conf, which overrides the params.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from gitfree.airflow import GitfreeCommitOperator, GitfreePullOperator, commit_dataset, dataset_outlet, pull_dataset


@dag(schedule=None, params={"raw": "demo/raw@1", "work": "", "own": ""})
def gitfree_run_lineage() -> None:
    """Pull raw with the operator and table in a TaskFlow task (and ``own``, if given, there too), then commit
    three ways: an operator naming raw in inputs too (each input once), a TaskFlow task naming nothing, an
    operator with auto_inputs=False."""
    pull_raw = GitfreePullOperator(
        task_id="pull_raw", ref="{{ params.raw }}", dest="{{ params.work }}/raw", overwrite=True
    )

    @task
    def pull_table(**context: object) -> str:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        if params["own"]:
            pull_dataset(params["own"], f"{params['work']}/own")
        return pull_dataset("demo/table", f"{params['work']}/table", overwrite=True).ref

    commit_operator = GitfreeCommitOperator(
        task_id="commit_operator", dataset="demo/clean", path="{{ params.work }}/raw", inputs=["{{ params.raw }}"]
    )
    commit_off = GitfreeCommitOperator(
        task_id="commit_off",
        dataset="demo/off",
        path="{{ params.work }}/table",
        inputs=["demo/table@1"],
        auto_inputs=False,
    )

    @task(outlets=[dataset_outlet("demo/features")])
    def commit_taskflow(**context: object) -> list[str]:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        made = commit_dataset("demo/features", f"{params['work']}/table")
        return [str(i) for i in made.inputs]

    pulled = [pull_raw, pull_table()]
    for commit in (commit_operator, commit_off, commit_taskflow()):
        pulled >> commit


gitfree_run_lineage()
