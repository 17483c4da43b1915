"""Promotion in real Airflow: ``GitfreeTagOperator(require=...)`` run by ``airflow dags test`` against SeaweedFS
moves the stage only through the gate, each move is an event of the tag's asset (``from``, ``to``), and a DAG
scheduled on that asset is queued by it."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_tree
from on_airflow.airflow_helpers import AirflowEnv, skip_without_airflow

skip_without_airflow()

from gitfree.airflow import tag_asset  # noqa: E402
from gitfree.airflow.provider import normalize_tag_uri  # noqa: E402
from gitfree.versioning import InputError  # noqa: E402

PRODUCTION = "gitfree-tag://demo/model/production"
pytestmark = pytest.mark.timeout(600)


def test_a_promotion_moves_the_stage_through_the_gate_and_queues_its_consumer(
    airflow_env: AirflowEnv, tmp_path: Path
) -> None:
    store = airflow_env.store()
    for i, accuracy in enumerate([0.90, 0.93, 0.91], start=1):
        store.commit(
            "demo/model", write_tree(tmp_path / f"m{i}", {"m": str(i).encode()}), metrics={"accuracy": accuracy}
        )
    store.tag("demo/model@1", "production")
    airflow_env.run("dags", "reserialize")
    assert airflow_env.run("dags", "unpause", "gitfree_on_production").ok

    promoted = airflow_env.dags_test("gitfree_promote", ref="demo/model@2", message="better")
    assert promoted.ok, promoted.output
    [event] = airflow_env.events(PRODUCTION)
    extra = event["extra"]
    assert (extra["from"], extra["to"], extra["ref"], extra["from_ref"]) == (1, 2, "demo/model@2", "demo/model@1")
    assert extra["gate"] == "accuracy 0.93 >= 0.9 of demo/model@1 (production)"
    assert (extra["action"], extra["seq"], extra["message"], extra["try_number"]) == ("moved", 2, "better", 1)
    assert (event["dag_id"], event["task_id"]) == ("gitfree_promote", "promote")
    assert airflow_env.queued("gitfree_on_production") == 1
    moved = store.tag_history("demo/model", "production")[-1]
    assert (moved.author.orchestrator, moved.author.pipeline, moved.author.task_id) == (
        "airflow",
        "gitfree_promote",
        "promote",
    )
    assert moved.author.run_id == event["run_id"]

    refused = airflow_env.dags_test("gitfree_promote", ref="demo/model@3")
    assert not refused.ok
    assert (
        "AirflowFailException: gitfree: refused to promote demo/model@3 to production: accuracy 0.91 < 0.93 of "
        "demo/model@2 (production)" in refused.output
    )
    assert len(airflow_env.events(PRODUCTION)) == 1
    assert store.show("demo/model@production").number == 2

    consumer = airflow_env.dags_test("gitfree_on_production")
    assert consumer.ok, consumer.output
    assert "production changed: demo/model@1 -> demo/model@2" in consumer.output


def test_tag_assets_name_a_dataset_and_a_tag() -> None:
    asset = tag_asset("models/churn", "production")
    assert asset.uri == "gitfree-tag://models/churn/production"
    with pytest.raises(InputError, match="invalid tag"):
        tag_asset("models/churn", "Prod")
    with pytest.raises(InputError, match="invalid dataset name"):
        tag_asset("Models", "prod")
    import urllib.parse

    for bad in ["gitfree-tag://production", "gitfree-tag://models/churn/7", "gitfree-tag://models/churn/prod?x=1"]:
        with pytest.raises(ValueError, match="not a gitfree tag asset URI"):
            normalize_tag_uri(urllib.parse.urlsplit(bad))
