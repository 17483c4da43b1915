"""Real Prefect flows under prefect_test_harness, against the SeaweedFS fixture."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from helpers import read_tree, write_tree
from on_prefect.prefect_helpers import committed_events, read_artifacts, wait_for
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from gitfree import Store
from gitfree.tasks import (
    GitfreeStore,
    _runtime,
    artifact_key,
    commit_dataset,
    diff_versions,
    list_versions,
    pull_dataset,
    tag_version,
)
from gitfree.testing import Faults, SeaweedFS
from gitfree.versioning import layout

GITFREE_FLOWS = str(Path(sys.executable).with_name("gitfree-flows"))


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


def test_commit_in_a_flow_records_provenance_artifact_and_one_event(store: Store, dataset: str, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.csv": b"x,1\n", "b/c.csv": b"y,2\n"})

    @flow(name="nightly-ingest")
    def nightly() -> tuple[str, str]:
        from prefect.runtime import flow_run

        version = commit_dataset(dataset, src, store=store, message="nightly")
        return version.model_dump_json(), flow_run.id

    raw, run_id = nightly()
    from gitfree import Version

    version = Version.model_validate_json(raw)
    assert version.number == 1
    assert version.author.orchestrator == "prefect"
    assert version.author.pipeline == "nightly-ingest"
    assert version.author.run_id == run_id
    assert version.author.task_id

    events = wait_for(lambda: committed_events(dataset))
    event = events[0]
    assert event.payload["number"] == 1
    assert event.payload["ref"] == f"{dataset}@1"
    assert event.payload["store"] == store.url
    assert event.payload["size"] == version.size

    artifacts = read_artifacts(artifact_key(dataset))
    assert artifacts
    assert f"{dataset}@1" in str(artifacts[0].data)

    # unchanged data: same version, no second event
    assert Version.model_validate_json(nightly()[0]).number == 1
    time.sleep(2)
    assert len(committed_events(dataset)) == 1

    write_tree(src, {"new.csv": b"z,3\n"})
    assert Version.model_validate_json(nightly()[0]).number == 2
    both = wait_for(lambda: [e for e in committed_events(dataset)] if len(committed_events(dataset)) == 2 else None)
    assert sorted(e.payload["number"] for e in both) == [1, 2]


def test_pulled_version_becomes_an_input_of_the_next_commit(store: Store, dataset: str, tmp_path: Path) -> None:
    store.commit(f"{dataset}-raw", write_tree(tmp_path / "raw", {"r": b"raw"}))

    @flow
    def clean() -> str:
        pulled = pull_dataset(f"{dataset}-raw", tmp_path / "work", store=store)
        (tmp_path / "work" / "r").write_bytes(b"clean")
        out = commit_dataset(dataset, tmp_path / "work", store=store)
        return f"{pulled.ref} {out.model_dump_json()}"

    pulled_ref, raw = clean().split(" ", 1)
    from gitfree import Version

    version = Version.model_validate_json(raw)
    assert pulled_ref == f"{dataset}-raw@1"
    assert [(i.dataset, i.number, i.store) for i in version.inputs] == [(f"{dataset}-raw", 1, None)]


def test_retried_commit_task_yields_one_version(store: Store, dataset: str, tmp_path: Path) -> None:
    """The first attempt dies after writing the version record (at latest.json, its last step); Prefect retries."""
    src = write_tree(tmp_path / "src", {"a": b"1"})

    @flow
    def ingest() -> int:
        return commit_dataset.with_options(retries=2, retry_delay_seconds=0)(dataset, src, store=store).number

    with Faults(store) as faults:
        # latest.json is created (or swapped) only once the record is written (Commit step 10).
        crashes = faults.fail(
            ["create", "replace"],
            layout.latest_key(dataset),
            error=RuntimeError("worker lost after the record was written"),
        )
        assert ingest() == 1
    assert crashes.fired
    assert [v.number for v in store.log(dataset)] == [1]
    time.sleep(2)
    assert len(wait_for(lambda: committed_events(dataset))) == 1


def test_tag_log_and_diff_tasks(store: Store, dataset: str, tmp_path: Path) -> None:
    src = tmp_path / "src"

    @flow
    def work() -> tuple[int, list[int], int]:
        write_tree(src, {"a": b"1"})
        commit_dataset(dataset, src, store=store)
        write_tree(src, {"b": b"2"})
        commit_dataset(dataset, src, store=store)
        tag = tag_version(f"{dataset}@1", "prod", store=store)
        versions = list_versions(dataset, store=store)
        diff = diff_versions(f"{dataset}@1", f"{dataset}@2", store=store)
        return tag.number, [v.number for v in versions], len(diff.added)

    assert work() == (1, [2, 1], 1)


def test_block_round_trips_without_leaking_its_secret(
    seaweedfs: SeaweedFS, s3_url: str, dataset: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"store-{dataset}"
    GitfreeStore(
        url=s3_url,
        endpoint_url=seaweedfs.endpoint,
        access_key_id=seaweedfs.access_key,
        secret_access_key=seaweedfs.secret_key,
        cache_dir=str(tmp_path / "c"),
    ).save(name)
    block = cast(GitfreeStore, GitfreeStore.load(name))
    assert block.secret_access_key is not None
    assert block.secret_access_key.get_secret_value() == seaweedfs.secret_key
    assert seaweedfs.secret_key not in repr(block)
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name, block_type_slug="gitfree-store", include_secrets=False)
    assert seaweedfs.secret_key not in str(document.data)

    @flow(log_prints=True)
    def use_block() -> int:
        print(f"using {block}")
        return commit_dataset(dataset, write_tree(tmp_path / "src", {"a": b"1"}), store=block).number

    assert use_block() == 1
    assert block.get_store().show(dataset).number == 1
    assert not [r for r in caplog.records if seaweedfs.secret_key in r.getMessage()]


def test_commit_in_one_flow_pull_in_another_process(
    store: Store, seaweedfs: SeaweedFS, dataset: str, tmp_path: Path
) -> None:
    files = {"x/y.bin": os.urandom(3000), "z.txt": b"zz"}

    @flow
    def produce() -> int:
        return commit_dataset(dataset, write_tree(tmp_path / "src", files), store=store).number

    assert produce() == 1
    env = {
        **os.environ,
        **seaweedfs.env(),
        "GITFREE_STORE": store.url,
        "GITFREE_CACHE_DIR": str(tmp_path / "worker-cache"),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }
    result = subprocess.run(
        [GITFREE_FLOWS, "pull", f"{dataset}@1", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_tree(tmp_path / "out") == files
    assert any((tmp_path / "worker-cache" / "files" / "md5").rglob("*"))


def test_lineage_registry_is_per_flow_run(store: Store, dataset: str, tmp_path: Path) -> None:
    """What one flow run pulled is the lineage of what that run commits, never of another run's commit:
    neither a later run that pulled nothing, nor one that pulled another version, nor a run going on at
    the same time (two flow runs in two threads, each pulling and committing while the other runs)."""
    raw = f"{dataset}-raw"
    store.commit(raw, write_tree(tmp_path / "raw1", {"r": b"raw 1"}))
    store.commit(raw, write_tree(tmp_path / "raw2", {"r": b"raw 2"}))
    assert _runtime.noted_inputs(store, "anything") == []  # outside a flow run there is no run to read

    @flow
    def pull_only(ref: str) -> None:
        pull_dataset(ref, tmp_path / f"pulled-{ref.rpartition('@')[2]}", store=store, overwrite=True)

    @flow
    def commit_only(name: str) -> list[str]:
        out = commit_dataset(name, write_tree(tmp_path / name, {"o": name.encode()}), store=store)
        return [str(i) for i in out.inputs]

    gate = threading.Barrier(2)

    @flow
    def pull_then_commit(ref: str, name: str, together: bool = False) -> list[str]:
        pull_dataset(ref, tmp_path / f"in-{name}", store=store)
        if together:
            gate.wait(60)  # both runs have pulled before either commits
        out = commit_dataset(name, write_tree(tmp_path / name, {"o": name.encode()}), store=store)
        return [str(i) for i in out.inputs]

    pull_only(f"{raw}@1")
    assert commit_only(f"{dataset}-a") == []  # a later run that pulled nothing: no inputs
    assert pull_then_commit(f"{raw}@2", f"{dataset}-b") == [f"{raw}@2"]  # not raw@1, pulled by another run

    results: dict[str, list[str]] = {}

    def run(ref: str, name: str) -> None:
        results[name] = pull_then_commit(ref, name, together=True)

    threads = [threading.Thread(target=run, args=(f"{raw}@{n}", f"{dataset}-c{n}")) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == {f"{dataset}-c1": [f"{raw}@1"], f"{dataset}-c2": [f"{raw}@2"]}


def test_block_takes_credentials_from_a_prefect_aws_block(
    seaweedfs: SeaweedFS, s3_url: str, dataset: str, tmp_path: Path
) -> None:
    prefect_aws = pytest.importorskip("prefect_aws")
    from prefect_aws.client_parameters import AwsClientParameters

    credentials = prefect_aws.AwsCredentials(
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=seaweedfs.endpoint),
    )
    credentials.save(f"aws-{dataset}")
    GitfreeStore(
        url=s3_url, cache_dir=str(tmp_path / "c"), aws_credentials=prefect_aws.AwsCredentials.load(f"aws-{dataset}")
    ).save(f"via-aws-{dataset}")
    store = cast(GitfreeStore, GitfreeStore.load(f"via-aws-{dataset}")).get_store()
    assert store.commit(dataset, write_tree(tmp_path / "src", {"a": b"1"})).number == 1
    assert seaweedfs.secret_key not in repr(GitfreeStore.load(f"via-aws-{dataset}"))
