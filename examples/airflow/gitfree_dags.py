"""gitfree in Airflow: one DAG versions a directory every day, another runs on each new version.

Put this file in your DAGs folder and create the connection ``gitfree_default`` (see docs/airflow.md),
e.g. ``AIRFLOW_CONN_GITFREE_DEFAULT='gitfree://KEY:SECRET@ml-data/versions?endpoint_url=...'``.

- ``sensors_ingest`` commits the directory ``params.source`` as the next version of ``demo/sensors``
  and tags it ``daily``. Unchanged data makes no version and no asset event.
- ``sensors_train`` is scheduled on the asset ``gitfree://demo/sensors``: each new version runs it
  once; it pulls exactly the version the event names and summarises it.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

from gitfree.airflow import GitfreeCommitOperator, GitfreePullOperator, GitfreeTagOperator, dataset_asset

SENSORS = dataset_asset("demo/sensors")  # the asset gitfree://demo/sensors
WORKDIR = str(Path(tempfile.gettempdir()) / "gitfree-airflow")  # where sensors_train pulls to
SOURCE = str(Path(__file__).resolve().parent.parent / "sensors")  # examples/sensors in this repository


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"source": SOURCE},
    tags=["gitfree"],
)
def sensors_ingest() -> None:
    commit = GitfreeCommitOperator(
        task_id="commit",
        dataset="demo/sensors",
        path="{{ params.source }}",
        message="ingested by {{ dag.dag_id }} {{ run_id }}",
        metadata={"source": "{{ params.source }}"},
    )
    tag = GitfreeTagOperator(
        task_id="tag",
        ref="{{ ti.xcom_pull(task_ids='commit')['ref'] }}",
        tag="daily",
        move=True,
    )
    commit >> tag


@dag(schedule=[SENSORS], params={"workdir": WORKDIR}, tags=["gitfree"])
def sensors_train() -> None:
    pull = GitfreePullOperator(
        task_id="pull",
        asset=SENSORS,  # the version named by the event that triggered this run
        dest="{{ params.workdir }}/sensors",
        overwrite=True,
    )

    @task
    def train(pulled: dict[str, object]) -> dict[str, object]:
        rows = 0
        for path in sorted(Path(str(pulled["dest"])).rglob("*.csv")):
            with path.open(newline="") as f:
                rows += sum(1 for _ in csv.DictReader(f))
        return {"ref": pulled["ref"], "files": pulled["nfiles"], "rows": rows}

    train(pull.output)


sensors_ingest()
sensors_train()
