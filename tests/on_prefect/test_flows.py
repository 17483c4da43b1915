"""The ready-made flows: ingestion from a path, an S3 prefix and an HTTP URL; a deployment triggered by a new
version."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from helpers import read_tree, write_tree
from on_prefect.prefect_helpers import committed_events, wait_for
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments.runner import RunnerDeployment
from prefect.settings import PREFECT_API_URL

from gitfree import Store
from gitfree.flows import ingest_dataset, train_example, train_trigger
from gitfree.tasks import GitfreeStore
from gitfree.testing import SeaweedFS

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


@pytest.fixture
def block(store: Store, seaweedfs: SeaweedFS) -> GitfreeStore:
    """Flows take a URL or a GitfreeStore block (JSON parameters, as a deployment passes them)."""
    return GitfreeStore(url=store.url, cache_dir=str(store.cache_dir), **seaweedfs.store_options())


def test_ingest_a_local_directory_skips_unchanged_sources(
    store: Store, block: GitfreeStore, dataset: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.csv": b"t,v\n0,1\n"})
    first = ingest_dataset(str(src), dataset, store=block)
    assert first.number == 1
    assert first.metadata["source"] == str(src)
    assert ingest_dataset(str(src), dataset, store=block).number == 1
    write_tree(src, {"b.csv": b"t,v\n0,2\n"})
    assert ingest_dataset(str(src), dataset, store=block).number == 2
    assert len(wait_for(lambda: (events := committed_events(dataset)) and len(events) == 2 and events)) == 2


def test_ingest_an_s3_prefix(
    store: Store, block: GitfreeStore, seaweedfs: SeaweedFS, dataset: str, tmp_path: Path
) -> None:
    s3 = seaweedfs.client()
    files = {"day=1/a.json": b'{"a": 1}', "day=1/b.json": b'{"b": 2}', "readme.txt": b"raw drop"}
    for key, body in files.items():
        s3.put_object(Bucket=seaweedfs.bucket, Key=f"raw-{dataset}/{key}", Body=body)
    source = f"s3://{seaweedfs.bucket}/raw-{dataset}"
    version = ingest_dataset(source, dataset, store=block)
    assert version.nfiles == 3
    assert read_tree(store.pull(version, tmp_path / "out")) == files
    assert ingest_dataset(source, dataset, store=block).number == 1


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_ingest_an_http_file(store: Store, block: GitfreeStore, dataset: str, http_root: tuple[Path, str]) -> None:
    root, url = http_root
    (root / "prices.csv").write_bytes(b"day,price\n1,10\n")
    version = ingest_dataset(f"{url}/prices.csv", dataset, store=block)
    assert (version.number, version.nfiles, version.pointer.out.path) == (1, 1, "prices.csv")
    assert ingest_dataset(f"{url}/prices.csv", dataset, store=block).number == 1
    (root / "prices.csv").write_bytes(b"day,price\n1,10\n2,11\n")
    assert ingest_dataset(f"{url}/prices.csv", dataset, store=block).number == 2


def test_new_version_triggers_the_training_deployment(
    store: Store, block: GitfreeStore, seaweedfs: SeaweedFS, dataset: str, tmp_path: Path
) -> None:
    """ingest → event gitfree.dataset.committed → automation runs train-on-<dataset> with ref=<dataset>@N."""
    model_dataset = f"models/{dataset}"
    deployment = train_example.to_deployment(
        name=f"train-on-{dataset}", triggers=[train_trigger(dataset)], parameters={"model_dataset": model_dataset}
    )
    deployment_id = cast(RunnerDeployment, deployment).apply()

    def runs() -> list[object]:
        with get_client(sync_client=True) as client:
            return list(
                client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                    sort=FlowRunSort.ID_DESC,
                    limit=10,
                )
            )

    src = tmp_path / "src"
    committed: list[str] = []

    def commit_and_look() -> list[object]:
        # The automation service loads new automations on its own schedule: commit until one fires.
        if not runs():
            write_tree(src, {f"reading-{len(committed)}.csv": f"t,v\n0,{len(committed) + 1}\n".encode()})
            committed.append(ingest_dataset(str(src), dataset, store=block).ref)
        return runs()

    triggered = wait_for(commit_and_look, timeout=120, interval=3)
    run = triggered[0]
    assert run.parameters["ref"] in committed
    assert run.parameters["store"] == store.url

    env = {
        **os.environ,
        **seaweedfs.env(),
        "GITFREE_CACHE_DIR": str(tmp_path / "worker-cache"),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }
    result = subprocess.run(
        [PREFECT, "flow-run", "execute", str(run.id)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    model = store.show(model_dataset)
    assert [str(i) for i in model.inputs] == [run.parameters["ref"]]
    assert model.author.pipeline == "gitfree-train-example"
    assert model.metrics["values"] >= 1


def test_ingest_an_s3_prefix_by_reference(
    store: Store, block: GitfreeStore, seaweedfs: SeaweedFS, dataset: str, tmp_path: Path
) -> None:
    """Nothing is copied or uploaded but the listing; an unchanged source is no new version."""
    s3 = seaweedfs.client()
    bucket = f"raw-{dataset.replace('_', '-')}"[:40].rstrip("-")
    s3.create_bucket(Bucket=bucket)
    files = {"day=1/a.json": b'{"a": 1}', "readme.txt": b"raw drop"}
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"drop/{key}", Body=body)
    version = ingest_dataset(f"s3://{bucket}/drop/", dataset, store=block, by_reference=True)
    assert (version.nfiles, version.reference is not None, version.metadata["source"]) == (
        2,
        True,
        f"s3://{bucket}/drop/",
    )
    assert not [oid for oid in store.objects.scan() if not oid.endswith(".dir")]
    assert read_tree(store.pull(version, tmp_path / "out")) == files
    again = ingest_dataset(f"s3://{bucket}/drop/", dataset, store=block, by_reference=True)
    assert (again.number, again.created) == (1, False)
