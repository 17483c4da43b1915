"""Running real Airflow commands in a test: an AIRFLOW_HOME of its own, its output, its database."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitfree import Store
from gitfree.testing import SeaweedFS

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def skip_without_airflow() -> None:
    """Skip the calling test module where Airflow is not installed (the main .venv: `make airflow` runs it)."""
    try:  # the distribution, not find_spec("airflow"): any folder named airflow on sys.path would pass for that
        importlib.metadata.distribution("apache-airflow-task-sdk")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("Airflow is not installed here: `make airflow` runs these tests", allow_module_level=True)


@dataclass
class Run:
    """One ``airflow`` command: its exit code and everything it printed (the task logs included)."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class AirflowEnv:
    """An AIRFLOW_HOME of its own (a copy of a migrated SQLite database), with the DAG files in its DAGs folder."""

    home: Path
    seaweedfs: SeaweedFS
    store_url: str
    connections: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    """More ``AIRFLOW__...`` settings of this Airflow."""

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        return {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **{f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in self.connections.items()},
            **self.settings,
        }

    def run(self, *args: str, timeout: float = 240) -> Run:
        result = subprocess.run(
            [AIRFLOW, *args], env=self.env(), capture_output=True, text=True, timeout=timeout, cwd=self.home
        )
        run = Run(result.returncode, result.stdout + result.stderr)
        for secret in self.secrets:  # whatever happened, no secret is printed
            assert secret not in run.output, f"a secret appeared in the output of airflow {' '.join(args)}"
        return run

    def dags_test(self, dag_id: str, **conf: Any) -> Run:
        return self.run("dags", "test", dag_id, "-c", json.dumps(conf))

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return db.execute(sql, params).fetchall()

    def events(self, uri: str) -> list[dict[str, Any]]:
        """The asset events of an asset, oldest first: their ``extra`` plus the source DAG, run and task."""
        rows = self.query(
            "SELECT e.extra, e.source_dag_id, e.source_run_id, e.source_task_id FROM asset_event e "
            "JOIN asset a ON a.id = e.asset_id WHERE a.uri = ? ORDER BY e.id",
            uri,
        )
        return [
            {"extra": json.loads(extra), "dag_id": dag_id, "run_id": run_id, "task_id": task_id}
            for extra, dag_id, run_id, task_id in rows
        ]

    def queued(self, dag_id: str) -> int:
        """Asset-triggered runs of ``dag_id`` the scheduler would create now (asset_dag_run_queue)."""
        return int(self.query("SELECT count(*) FROM asset_dag_run_queue WHERE target_dag_id = ?", dag_id)[0][0])

    def store(self) -> Store:
        """The store the DAGs use, opened from the test with a worker cache of its own."""
        return Store(self.store_url, cache_dir=self.home / "test-cache", **self.seaweedfs.store_options())


def gitfree_connection(seaweedfs: SeaweedFS, store_url: str) -> str:
    """The ``gitfree_default`` connection, JSON form: bucket in host, prefix in schema, keys in login/password."""
    bucket, _, prefix = store_url.removeprefix("s3://").partition("/")
    return json.dumps(
        {
            "conn_type": "gitfree",
            "host": bucket,
            "schema": prefix,
            "login": seaweedfs.access_key,
            "password": seaweedfs.secret_key,
            "extra": {"endpoint_url": seaweedfs.endpoint, "region": "us-east-1"},
        }
    )
