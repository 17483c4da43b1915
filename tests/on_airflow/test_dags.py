"""Real DAGs run by ``airflow dags test`` against SeaweedFS: versions, asset events, consumers, connections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import read_tree, write_tree
from on_airflow.airflow_helpers import AirflowEnv, skip_without_airflow

SENSORS = "gitfree://demo/sensors"
DAY_1 = {"station-0/reading-000.csv": b"t,value\n0,19.8\n1,20.4\n", "manifest.json": b'{"day": 1}\n'}

skip_without_airflow()
pytestmark = pytest.mark.timeout(600)


def test_each_new_version_is_one_asset_event_and_the_consumer_pulls_it(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "sensors", DAY_1)
    airflow_env.run("dags", "reserialize")
    assert airflow_env.run("dags", "unpause", "sensors_train").ok  # so that an event queues a run of it

    first = airflow_env.dags_test("sensors_ingest", source=str(source))
    assert first.ok, first.output
    events = airflow_env.events(SENSORS)
    assert len(events) == 1
    extra = events[0]["extra"]
    version = airflow_env.store().show("demo/sensors@1")
    assert extra["ref"] == "demo/sensors@1"
    assert extra["number"] == 1
    assert extra["dataset"] == "demo/sensors"
    assert extra["store"] == airflow_env.store_url
    assert (extra["nfiles"], extra["size"], extra["md5"]) == (2, version.size, version.md5)
    assert extra["version_id"] == str(version.id)
    assert extra["try_number"] == 1
    assert airflow_env.queued("sensors_train") == 1  # the scheduler would run the consumer for it

    # Provenance: the DAG, its run and the task are the version's author.
    assert version.author.orchestrator == "airflow"
    assert version.author.pipeline == "sensors_ingest"
    assert version.author.run_id == events[0]["run_id"]
    assert version.author.task_id == "commit"
    assert version.author.host
    assert version.message == f"ingested by sensors_ingest {events[0]['run_id']}"
    assert version.metadata == {"source": str(source)}
    assert airflow_env.store().show("demo/sensors@daily").number == 1  # the tag operator ran after it

    # Same data again: the task succeeds, no version, no event.
    again = airflow_env.dags_test("sensors_ingest", source=str(source))
    assert again.ok, again.output
    assert "no asset event: demo/sensors is unchanged since demo/sensors@1" in again.output
    assert len(airflow_env.events(SENSORS)) == 1
    assert [v.number for v in airflow_env.store().log("demo/sensors")] == [1]

    # Day 2: one reading corrected, one added -> version 2, a second event.
    write_tree(source, {"station-0/reading-000.csv": b"t,value\n0,19.9\n1,20.4\n", "station-1/reading-001.csv": b"t\n"})
    second = airflow_env.dags_test("sensors_ingest", source=str(source))
    assert second.ok, second.output
    assert [e["extra"]["ref"] for e in airflow_env.events(SENSORS)] == ["demo/sensors@1", "demo/sensors@2"]

    # The consumer (run by hand here, not by the asset) takes the newest event's version.
    workdir = tmp_path / "work"
    consumer = airflow_env.dags_test("sensors_train", workdir=str(workdir))
    assert consumer.ok, consumer.output
    assert read_tree(workdir / "sensors") == read_tree(source)
    assert "Returned value was: {'ref': 'demo/sensors@2', 'files': 3, 'rows': 2}" in consumer.output


def test_taskflow_helpers_commit_emit_and_pull(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    run = airflow_env.dags_test("gitfree_taskflow", source=str(tmp_path / "notes"), dest=str(tmp_path / "pulled"))
    assert run.ok, run.output
    assert "taskflow pulled demo/notes@1" in run.output
    [event] = airflow_env.events("gitfree://demo/notes")
    assert event["extra"]["ref"] == "demo/notes@1"
    assert event["task_id"] == "write_and_commit"
    version = airflow_env.store().show("demo/notes@1")
    assert version.metrics == {"notes": 1} and type(version.metrics["notes"]) is int  # an integer stays one
    assert (version.author.pipeline, version.author.task_id) == ("gitfree_taskflow", "write_and_commit")
    assert read_tree(tmp_path / "pulled") == read_tree(tmp_path / "notes")


def test_a_retry_after_a_crash_recognises_its_version(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    run = airflow_env.dags_test("gitfree_retry", source=str(write_tree(tmp_path / "s", {"f": b"1"})))
    assert run.ok, run.output
    assert "crashed after committing demo/retry@1" in run.output
    assert [v.number for v in airflow_env.store().log("demo/retry")] == [1]
    [event] = airflow_env.events("gitfree://demo/retry")  # from the try that succeeded
    assert (event["extra"]["ref"], event["extra"]["try_number"]) == ("demo/retry@1", 2)


def test_pull_operator_by_number_tag_and_latest(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    store = airflow_env.store()
    one = write_tree(tmp_path / "one", {"a.txt": b"one\n"})
    two = write_tree(tmp_path / "two", {"a.txt": b"two\n", "b/c.txt": b"c\n"})
    store.commit("demo/pulled", one)
    store.commit("demo/pulled", two)
    store.tag("demo/pulled@1", "prod")

    dest = tmp_path / "dest"
    run = airflow_env.dags_test(
        "gitfree_pull", refs=["demo/pulled@prod", "demo/pulled@2", "demo/pulled"], dest=str(dest)
    )
    assert run.ok, run.output
    assert [read_tree(dest / str(i)) for i in range(3)] == [read_tree(one), read_tree(two), read_tree(two)]


def test_skip_if_unchanged_skips_the_task_and_its_downstream(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "data", {"x": b"1"})
    first = airflow_env.dags_test("gitfree_skip", source=str(source))
    assert first.ok, first.output
    assert "ran after a new version" in first.output
    second = airflow_env.dags_test("gitfree_skip", source=str(source))
    assert second.ok, second.output
    assert "ran after a new version" not in second.output
    states = dict(
        airflow_env.query("SELECT task_id, state FROM task_instance WHERE run_id = ?", _last_run(airflow_env))
    )
    assert states == {"commit": "skipped", "after": "skipped"}
    assert len(airflow_env.events("gitfree://demo/skip")) == 1


def _last_run(airflow_env: AirflowEnv) -> str:
    return str(airflow_env.query("SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 1")[0][0])


def test_connection_in_uri_form(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    s3 = airflow_env.seaweedfs
    bucket, _, prefix = airflow_env.store_url.removeprefix("s3://").partition("/")
    endpoint = s3.endpoint.replace(":", "%3A").replace("/", "%2F")
    airflow_env.connections["gitfree_default"] = (
        f"gitfree://{s3.access_key}:{s3.secret_key}@{bucket}/{prefix}?endpoint_url={endpoint}"
    )
    run = airflow_env.dags_test("sensors_ingest", source=str(write_tree(tmp_path / "s", DAY_1)))
    assert run.ok, run.output
    assert airflow_env.store().show("demo/sensors").number == 1


def test_aws_connection_with_the_store_given_to_the_operator(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    s3 = airflow_env.seaweedfs
    del airflow_env.connections["gitfree_default"]
    airflow_env.connections["aws_store"] = json.dumps(
        {
            "conn_type": "aws",
            "login": s3.access_key,
            "password": s3.secret_key,
            "extra": {"region_name": "us-east-1", "endpoint_url": s3.endpoint},
        }
    )
    source = write_tree(tmp_path / "s", {"f": b"aws"})
    run = airflow_env.dags_test("gitfree_aws", source=str(source), store=airflow_env.store_url)
    assert run.ok, run.output
    assert airflow_env.store().show("demo/aws").nfiles == 1


def test_missing_connection_fails_saying_how_to_create_it(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    airflow_env.connections.clear()
    run = airflow_env.dags_test("sensors_ingest", source=str(write_tree(tmp_path / "s", DAY_1)))
    assert not run.ok
    assert "the Airflow connection 'gitfree_default' does not exist: create it with conn type 'gitfree'" in run.output
    assert "AIRFLOW_CONN_GITFREE_DEFAULT=" in run.output


def test_bad_input_fails_without_retrying(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    run = airflow_env.dags_test("sensors_ingest", source=str(missing))
    assert not run.ok
    assert f"AirflowFailException: gitfree: cannot commit {missing}: it does not exist" in run.output
    run = airflow_env.dags_test("gitfree_pull", refs=["demo/absent@1"] * 3, dest=str(tmp_path / "d"))
    assert not run.ok
    assert "dataset 'demo/absent' does not exist" in run.output


def test_consumer_without_any_event_says_so(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    run = airflow_env.dags_test("sensors_train", workdir=str(tmp_path / "w"))
    assert not run.ok
    assert "gitfree://demo/sensors has no asset event yet" in run.output


def test_secrets_never_reach_the_task_logs(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    """Every run of these tests checks its output for the store's secret; here also a run whose secret is wrong."""
    s3 = airflow_env.seaweedfs
    wrong = "wr0ng-s3cret-" + s3.secret_key[-8:]
    airflow_env.secrets.append(wrong)
    bucket, _, prefix = airflow_env.store_url.removeprefix("s3://").partition("/")
    airflow_env.connections["gitfree_default"] = json.dumps(
        {
            "conn_type": "gitfree",
            "host": bucket,
            "schema": prefix,
            "login": s3.access_key,
            "password": wrong,
            "extra": {"endpoint_url": s3.endpoint, "session_token": "t0ken-" + wrong},
        }
    )
    run = airflow_env.dags_test("sensors_ingest", source=str(write_tree(tmp_path / "s", DAY_1)))
    assert not run.ok
    assert "gitfree:" in run.output  # the task failed with gitfree's message, which names no secret
    logs = [p.read_text(errors="replace") for p in (airflow_env.home / "logs").rglob("*") if p.is_file()]
    assert not any(secret in text for text in logs for secret in airflow_env.secrets)


def test_provider_is_listed(airflow_env: AirflowEnv) -> None:
    providers = airflow_env.run("providers", "list")
    assert providers.ok, providers.output
    assert any(line.split("|")[0].strip() == "gitfree" for line in providers.output.splitlines())
    hooks = airflow_env.run("providers", "hooks")
    assert any(
        "gitfree.airflow.hooks.GitfreeHook" in line and "gitfree_conn_id" in line for line in hooks.output.splitlines()
    )


def test_a_bad_dataset_name_fails_when_the_dag_is_parsed(airflow_env: AirflowEnv) -> None:
    (airflow_env.home / "dags" / "bad_dag.py").write_text(
        "from airflow.sdk import dag\n"
        "from gitfree.airflow import GitfreeCommitOperator\n\n"
        "@dag(schedule=None)\n"
        "def bad():\n"
        "    GitfreeCommitOperator(task_id='commit', dataset='Raw Sales', path='/tmp/x')\n\n"
        "bad()\n"
    )
    airflow_env.run("dags", "reserialize")
    run = airflow_env.run("dags", "list-import-errors")
    assert "bad_dag.py" in run.output
    assert "invalid dataset name 'Raw Sales'" in run.output
