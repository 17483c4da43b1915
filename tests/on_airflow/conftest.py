"""Airflow fixtures: real ``airflow dags test`` runs (Airflow 3.3 on SQLite) against the session's SeaweedFS.

These tests need Airflow, which cannot share an environment with Prefect: ``make airflow`` makes
``.venv-airflow`` and runs them there. Where Airflow is not installed (the main ``.venv``) each test
module skips itself (``skip_without_airflow``), so ``pytest`` and ``pytest tests/on_airflow`` both pass there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration when it is first imported (by the in-process tests): never the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="gitfree-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from on_airflow.airflow_helpers import AIRFLOW, AirflowEnv, gitfree_connection

from gitfree.testing import SeaweedFS

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "airflow"
DAG_FILES = [
    EXAMPLES / "gitfree_dags.py",
    EXAMPLES / "gitfree_pipeline.py",
    *sorted((Path(__file__).parent / "dags").glob("*.py")),
]


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow database migrated once per session; each test copies it (3 s saved per test)."""
    home = tmp_path_factory.mktemp("airflow-template")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
    }
    (home / "dags").mkdir()
    result = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return home / "airflow.db"


@pytest.fixture
def airflow_env(tmp_path: Path, migrated_db: Path, seaweedfs: SeaweedFS, s3_url: str) -> AirflowEnv:
    """A fresh Airflow (database, DAGs folder) whose ``gitfree_default`` connection reaches a fresh store prefix."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    shutil.copy(migrated_db, home / "airflow.db")
    for dag_file in DAG_FILES:
        shutil.copy(dag_file, home / "dags" / dag_file.name)
    return AirflowEnv(
        home=home,
        seaweedfs=seaweedfs,
        store_url=s3_url,
        connections={"gitfree_default": gitfree_connection(seaweedfs, s3_url)},
        secrets=[seaweedfs.secret_key],
    )
