"""Real DAGs (``airflow dags test``) on Azurite and fake-gcs-server through a ``gitfree`` connection, and a version by
reference of a SeaweedFS source bucket: committed, pulled, materialised by the operators."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers import read_tree, write_tree
from on_airflow.airflow_helpers import AirflowEnv, skip_without_airflow

from gitfree import Store
from gitfree.testing import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, FakeGCS

skip_without_airflow()
pytestmark = pytest.mark.timeout(600)

FILES = {"a.csv": b"x,1\n", "deep/b.bin": bytes(range(256)) * 16}


def _round_trip(airflow_env: AirflowEnv, connection: Mapping[str, object], tmp_path: Path) -> str:
    """Run ``gitfree_cloud`` through ``connection``; the output (checked for every secret by the harness)."""
    airflow_env.connections["gitfree_cloud"] = json.dumps(connection)
    source = write_tree(tmp_path / "src", FILES)
    run = airflow_env.dags_test("gitfree_cloud", source=str(source), dest=str(tmp_path / "out"))
    assert run.ok, run.output
    assert read_tree(tmp_path / "out") == FILES
    logs = [p.read_text(errors="replace") for p in (airflow_env.home / "logs").rglob("*") if p.is_file()]
    assert not any(secret in text for text in logs for secret in airflow_env.secrets)
    return run.output


def test_a_dag_commits_and_pulls_on_azurite_through_a_connection(
    airflow_env: AirflowEnv, azurite: Azurite, tmp_path: Path
) -> None:
    url = f"az://{azurite.container}/airflow-{uuid.uuid4().hex[:8]}"
    airflow_env.secrets.append(AZURITE_KEY)
    connection = {
        "conn_type": "gitfree",
        "host": url,
        "login": AZURITE_ACCOUNT,
        "password": AZURITE_KEY,
        "extra": {"endpoint_url": azurite.endpoint},
    }
    output = _round_trip(airflow_env, connection, tmp_path)
    assert f"gitfree store {url} (connection gitfree_cloud)" in output
    store = Store(url, cache_dir=tmp_path / "check", **azurite.store_options())
    version = store.show("demo/cloud@1")
    assert (version.nfiles, version.author.pipeline, version.author.task_id) == (2, "gitfree_cloud", "commit")
    [event] = airflow_env.events("gitfree://demo/cloud")
    assert (event["extra"]["ref"], event["extra"]["store"]) == ("demo/cloud@1", url)


def test_a_dag_commits_and_pulls_on_fake_gcs_through_a_connection(
    airflow_env: AirflowEnv, fake_gcs: FakeGCS, tmp_path: Path
) -> None:
    url = f"gs://{fake_gcs.bucket}/airflow-{uuid.uuid4().hex[:8]}"
    connection = {
        "conn_type": "gitfree",
        "host": url,
        "extra": {"endpoint_url": fake_gcs.endpoint, "project": "gitfree-tests"},
    }
    output = _round_trip(airflow_env, connection, tmp_path)
    assert f"gitfree store {url} (connection gitfree_cloud)" in output
    version = Store(url, cache_dir=tmp_path / "check", endpoint_url=fake_gcs.endpoint).show("demo/cloud@1")
    assert version.nfiles == 2
    assert [e["extra"]["store"] for e in airflow_env.events("gitfree://demo/cloud")] == [url]


def _xcoms(env: AirflowEnv, task_id: str) -> list[dict[str, Any]]:
    rows = env.query(
        "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id "
        "WHERE x.dag_id = 'gitfree_by_reference' AND x.task_id = ? AND x.key = 'return_value' ORDER BY r.id",
        task_id,
    )
    return [json.loads(value) for (value,) in rows]


def test_a_dag_versions_a_source_bucket_by_reference_and_materialises_it(
    airflow_env: AirflowEnv, tmp_path: Path
) -> None:
    s3 = airflow_env.seaweedfs
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    client = s3.client()
    for key, data in FILES.items():
        client.put_object(Bucket=bucket, Key=f"day-1/{key}", Body=data)
    source = f"s3://{bucket}/day-1/"

    run = airflow_env.dags_test("gitfree_by_reference", source=source, dest=str(tmp_path / "out"))
    assert run.ok, run.output
    assert read_tree(tmp_path / "out") == FILES
    store = airflow_env.store()
    version = store.show("demo/landed@1")
    assert version.reference is not None and version.reference.source == source
    assert version.message.startswith("imported by ")
    [event] = airflow_env.events("gitfree://demo/landed")
    assert (event["extra"]["ref"], event["extra"]["source"]) == ("demo/landed@1", source)
    [imported] = _xcoms(airflow_env, "import")
    assert (imported["ref"], imported["source"], imported["created"]) == ("demo/landed@1", source, True)
    [kept] = _xcoms(airflow_env, "keep")
    assert (kept["ref"], kept["materialized"]) == ("demo/landed@1", True)
    assert f"materialized demo/landed@1: 2 files copied on the server, 0 streamed, into {store.url}" in run.output

    # The source unchanged: the task succeeds, no version, no event.
    again = airflow_env.dags_test("gitfree_by_reference", source=source, dest=str(tmp_path / "again"))
    assert again.ok, again.output
    assert "no asset event: demo/landed is unchanged since demo/landed@1" in again.output
    assert len(airflow_env.events("gitfree://demo/landed")) == 1
    assert [x["created"] for x in _xcoms(airflow_env, "import")] == [True, False]

    # Materialised: the version no longer needs its source.
    for key in FILES:
        client.delete_object(Bucket=bucket, Key=f"day-1/{key}")
    fresh = Store(store.url, cache_dir=tmp_path / "fresh-cache", **s3.store_options())
    fresh.pull("demo/landed@1", tmp_path / "after")
    assert read_tree(tmp_path / "after") == FILES
