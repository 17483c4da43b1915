"""The pieces without a DAG run: connections to store options, assets, operator arguments, provider info."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from on_airflow.airflow_helpers import skip_without_airflow

skip_without_airflow()

from airflow.sdk import Asset, AssetAlias, Connection  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

from gitfree.airflow import (  # noqa: E402
    GitfreeCommitOperator,
    GitfreePullOperator,
    dataset_asset,
    dataset_of,
    dataset_outlet,
    get_provider_info,
    version_extra,
)
from gitfree.airflow.hooks import _connection_options  # noqa: E402
from gitfree.versioning import ConfigError, InputError, Store  # noqa: E402


def test_json_connection_gives_the_store_and_its_access() -> None:
    conn = Connection(
        conn_id="gitfree_default",
        conn_type="gitfree",
        host="ml-data",
        schema="versions",
        login="AKIA1",
        password="s3cret",
        extra=json.dumps({"endpoint_url": "http://127.0.0.1:8333", "region": "eu-west-1", "jobs": 8}),
    )
    assert _connection_options(conn) == {
        "store": "s3://ml-data/versions",
        "access_key_id": "AKIA1",
        "secret_access_key": "s3cret",
        "endpoint_url": "http://127.0.0.1:8333",
        "region": "eu-west-1",
        "jobs": 8,
    }


def test_uri_connection_and_a_whole_url_in_host_or_extra() -> None:
    conn = Connection.from_uri(
        "gitfree://AKIA1:s%2Fcret@ml-data/versions?endpoint_url=http%3A%2F%2Fs3.internal%3A8333",
        conn_id="gitfree_default",
    )
    options = _connection_options(conn)
    assert options["store"] == "s3://ml-data/versions"
    assert options["secret_access_key"] == "s/cret"  # noqa: S105 - a test value
    assert options["endpoint_url"] == "http://s3.internal:8333"
    assert _connection_options(Connection(conn_id="c", conn_type="gitfree", host="file:///srv/store"))["store"] == (
        "file:///srv/store"
    )
    extra_store = Connection(conn_id="c", conn_type="gitfree", host="ignored", extra='{"store": "s3://b/p"}')
    assert _connection_options(extra_store)["store"] == "s3://b/p"


def test_aws_connection_gives_credentials_region_and_endpoint() -> None:
    conn = Connection(
        conn_id="aws_default",
        conn_type="aws",
        login="AKIA2",
        password="s3cret2",
        extra=json.dumps(
            {"region_name": "us-east-2", "service_config": {"s3": {"endpoint_url": "http://x:1"}}, "verify": False}
        ),
    )
    assert _connection_options(conn) == {
        "access_key_id": "AKIA2",
        "secret_access_key": "s3cret2",
        "region": "us-east-2",
        "endpoint_url": "http://x:1",
    }


def test_unknown_extra_key_is_refused_with_the_known_ones() -> None:
    conn = Connection(conn_id="gitfree_default", conn_type="gitfree", extra='{"endpoint": "http://x"}')
    with pytest.raises(ConfigError, match=r"extra keys gitfree does not know: endpoint; use store, endpoint_url"):
        _connection_options(conn)


def test_assets_and_outlets_name_datasets() -> None:
    assert dataset_asset("images").uri == "gitfree://images"
    assert dataset_asset("raw/sales") == Asset("gitfree://raw/sales")
    assert dataset_outlet("raw/sales") == AssetAlias("gitfree:raw/sales")
    assert dataset_of(dataset_asset("raw/sales")) == "raw/sales"
    assert dataset_of(dataset_outlet("images")) == "images"
    assert dataset_of("gitfree://images/") == "images"
    with pytest.raises(InputError, match="invalid dataset name 'Images'"):
        dataset_asset("Images")
    with pytest.raises(InputError, match="'s3://bucket/key' is not a gitfree dataset"):
        dataset_of(Asset("s3://bucket/key"))
    with pytest.raises(ValueError, match="is not a gitfree asset URI"):
        Asset("gitfree://images@3")  # the provider's URI handler


def test_operators_check_their_arguments_when_the_dag_is_parsed() -> None:
    with pytest.raises(AirflowFailException, match="gitfree: invalid dataset name 'Raw Sales'"):
        GitfreeCommitOperator(task_id="commit", dataset="Raw Sales", path="/data")
    with pytest.raises(ValueError, match="exactly one of ref="):
        GitfreePullOperator(task_id="pull", dest="/d")
    with pytest.raises(ValueError, match="exactly one of ref="):
        GitfreePullOperator(task_id="pull", dest="/d", ref="images@1", asset=dataset_asset("images"))
    commit = GitfreeCommitOperator(task_id="commit", dataset="images", path="/data", outlets=[Asset("s3://b/k")])
    assert commit.outlets == [Asset("s3://b/k"), dataset_outlet("images")]
    pull = GitfreePullOperator(task_id="pull", dest="/d", asset=dataset_asset("images"))
    assert pull.inlets == [dataset_asset("images")]


def test_provider_info_matches_airflows_schema() -> None:
    import jsonschema  # type: ignore[import-untyped]  # (Airflow's dependency; no stubs in .venv-airflow)
    from airflow import providers_manager

    schema_path = Path(providers_manager.__file__).with_name("provider_info.schema.json")
    info = get_provider_info()
    jsonschema.validate(info, json.loads(schema_path.read_text()))
    assert info["package-name"] == "gitfree"
    assert info["connection-types"] == [
        {"connection-type": "gitfree", "hook-class-name": "gitfree.airflow.hooks.GitfreeHook", "hook-name": "gitfree"}
    ]


def test_version_extra_is_json() -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    from gitfree.versioning import Version

    version = Version.model_validate(
        {
            "dataset": "images",
            "number": 3,
            "id": uuid4(),
            "created_at": datetime.now(UTC),
            "pointer": {"outs": [{"md5": "0" * 32 + ".dir", "size": 5, "nfiles": 2, "path": "images"}]},
            "size": 5,
            "nfiles": 2,
        }
    )
    extra = version_extra(version, "s3://b/p")
    assert json.loads(json.dumps(extra)) == extra
    assert (extra["ref"], extra["store"], extra["nfiles"]) == ("images@3", "s3://b/p", 2)


def test_gitfree_airflow_imports_neither_prefect_nor_the_prefect_tasks() -> None:
    code = (
        "import sys, gitfree.airflow\n"
        "from gitfree.airflow import GitfreeCommitOperator, commit_dataset, GitfreeHook\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect' or m.startswith('gitfree.tasks')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_run_triggered_by_several_versions_takes_the_newest() -> None:
    """The triggering events as Airflow hands them to a task (its own classes), newest version not last."""
    from datetime import UTC, datetime

    from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from gitfree.airflow._runtime import check_same_store, version_from_events

    asset = dataset_asset("images")

    def event(number: int) -> AssetEventDagRunReferenceResult:
        return AssetEventDagRunReferenceResult(
            asset=AssetReferenceAssetEventDagRun(name=asset.name, uri=asset.uri, extra={}),
            extra={"ref": f"images@{number}", "store": "s3://b/p"},
            source_task_id="commit",
            source_dag_id="ingest",
            source_run_id=f"run-{number}",
            source_map_index=-1,
            source_aliases=[],
            timestamp=datetime.now(UTC),
        )

    context = {"triggering_asset_events": TriggeringAssetEventsAccessor.build([event(9), event(11), event(10)])}
    assert version_from_events(context, asset) == ("images@11", "s3://b/p")
    with pytest.raises(InputError, match="names the store s3://b/p, but this task's connection reaches"):
        check_same_store("s3://b/p", Store("s3://other/p", endpoint_url="http://127.0.0.1:1"), "images@11")
    bad = {"triggering_asset_events": TriggeringAssetEventsAccessor.build([event(1).model_copy(update={"extra": {}})])}
    with pytest.raises(InputError, match="has no version in its extra"):
        version_from_events(bad, asset)
