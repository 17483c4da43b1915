"""The example DAGs under a live Airflow (``airflow standalone``: scheduler, DAG processor, API server,
triggerer): the scheduler runs the ingest DAG, and runs the consumer once per new version, by itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import read_tree, write_tree
from on_airflow.airflow_helpers import AIRFLOW, AirflowEnv, skip_without_airflow

from gitfree.testing import free_port

skip_without_airflow()
pytestmark = pytest.mark.timeout(600)

DAY_1 = {"station-0/reading-000.csv": b"t,value\n0,19.8\n1,20.4\n"}
DAY_2 = {"station-0/reading-000.csv": b"t,value\n0,19.9\n1,20.4\n", "station-1/reading-001.csv": b"t,value\n0,7.5\n"}


@contextlib.contextmanager
def standalone(airflow_env: AirflowEnv, env: dict[str, str]) -> Iterator[Path]:
    """``airflow standalone`` on free ports; stopped (its whole process group) on exit. Yields its log."""
    log_path = airflow_env.home / "standalone.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [AIRFLOW, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=airflow_env.home,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield log_path
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole process group, then SIGKILL to whatever is left after 20 s (the triggerer
    can outlive standalone itself)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_for(what: str, check: Callable[[], Any], log: Path, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}; the end of {log}:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.mark.slow  # make slow: 3 minutes of a live Airflow; test_dags checks the asset queue its scheduler reads
def test_the_scheduler_runs_the_consumer_once_per_new_version(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    # The example's ingest DAG reads <dags>/../sensors by default: its scheduled run commits day 1.
    source = write_tree(airflow_env.home / "sensors", DAY_1)
    api_port = free_port()
    env = {
        **airflow_env.env(),
        "PATH": f"{Path(AIRFLOW).parent}:{os.environ.get('PATH', '')}",  # standalone starts `airflow ...`
        "TMPDIR": str(tmp_path),  # the consumer pulls to $TMPDIR/gitfree-airflow/sensors
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__CORE__PARALLELISM": "4",  # LocalExecutor's worker processes (32 by default)
    }

    def cli(*args: str) -> str:
        result = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stdout + result.stderr
        assert airflow_env.seaweedfs.secret_key not in result.stdout + result.stderr
        return result.stdout

    def runs(dag_id: str) -> list[tuple[str, str]]:
        return [
            (str(kind), str(state))
            for kind, state in airflow_env.query(
                "SELECT run_type, state FROM dag_run WHERE dag_id = ? ORDER BY id", dag_id
            )
        ]

    def finished(dag_id: str, count: int) -> bool:
        states = [state for _, state in runs(dag_id)]
        return len(states) >= count and all(state in ("success", "failed") for state in states)

    def trained() -> list[Any]:
        rows = airflow_env.query(
            "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id "
            "WHERE x.dag_id = 'sensors_train' AND x.task_id = 'train' AND x.key = 'return_value' ORDER BY r.id"
        )
        return [json.loads(value) for (value,) in rows]

    with standalone(airflow_env, env) as log:
        parsed = "SELECT count(*) FROM dag WHERE dag_id IN ('sensors_ingest', 'sensors_train')"
        wait_for("the DAGs to be parsed", lambda: airflow_env.query(parsed)[0][0] == 2, log)
        cli("dags", "unpause", "sensors_train")
        cli("dags", "unpause", "sensors_ingest")  # its @daily schedule makes one run (no catchup)

        wait_for("the scheduled ingest and the consumer", lambda: finished("sensors_train", 1), log)
        assert runs("sensors_ingest") == [("scheduled", "success")]
        assert runs("sensors_train") == [("asset_triggered", "success")]
        assert [v.number for v in airflow_env.store().log("demo/sensors")] == [1]

        write_tree(source, DAY_2)  # day 2: a new version, so one more consumer run
        cli("dags", "trigger", "sensors_ingest")
        wait_for("the second version's consumer", lambda: finished("sensors_train", 2), log)
        cli("dags", "trigger", "sensors_ingest")  # unchanged data: no version, no event, no consumer run
        wait_for("the third ingest", lambda: finished("sensors_ingest", 3), log)
        time.sleep(10)  # a consumer run queued by mistake would be created within a few heartbeats

        assert [state for _, state in runs("sensors_ingest")] == ["success"] * 3
        assert runs("sensors_train") == [("asset_triggered", "success")] * 2
    assert [v.number for v in airflow_env.store().log("demo/sensors")] == [2, 1]
    assert [e["extra"]["ref"] for e in airflow_env.events("gitfree://demo/sensors")] == [
        "demo/sensors@1",
        "demo/sensors@2",
    ]
    assert trained() == [
        {"ref": "demo/sensors@1", "files": 1, "rows": 2},
        {"ref": "demo/sensors@2", "files": 2, "rows": 3},
    ]
    assert read_tree(tmp_path / "gitfree-airflow" / "sensors") == read_tree(source)
    logs = [airflow_env.home / "standalone.log", *(airflow_env.home / "logs").rglob("*.log")]
    assert len(logs) > 4  # the task logs of every run are there
    assert not [p for p in logs if airflow_env.seaweedfs.secret_key in p.read_text(errors="replace")]
