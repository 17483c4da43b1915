"""Versioned steps as Prefect tasks (``gitfree.tasks.step``) and the example pipeline ``sales_pipeline``: real
flow runs under the session's Prefect server, against SeaweedFS and a file store. The step bodies count
their runs in a file (``step_helpers.counting``: the same body, hence the same step keys)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from figures import FULL
from on_prefect.prefect_helpers import wait_for
from on_prefect.step_helpers import EXAMPLE_SALES, artifact_keys, body_runs, committed, counting, task_states

from gitfree import Store, Version
from gitfree.flows import pipeline
from gitfree.testing import SeaweedFS

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


@pytest.fixture
def worker_env(store: Store, seaweedfs: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow reaches the test's store as a worker would: GITFREE_STORE, credentials, its own worker cache."""
    if store.url.startswith("s3://"):
        for name, value in seaweedfs.env().items():
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITFREE_STORE", store.url)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "worker-cache"))


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Counter[str]]:
    """The pipeline's two steps count their body runs; returns how many so far, by step."""
    counter = tmp_path / "body-runs.txt"
    monkeypatch.setattr(pipeline, "featurize", counting(pipeline.featurize, counter))
    monkeypatch.setattr(pipeline, "train", counting(pipeline.train, counter))
    return lambda: body_runs(counter)


def _run(source: Path, **parameters: Any) -> tuple[dict[str, Version], Any]:
    """One flow run of the pipeline: its versions by name, and the flow run's id."""
    state = pipeline.sales_pipeline(str(source), return_state=True, **parameters)
    versions: dict[str, Version] = state.result()
    return versions, state.state_details.flow_run_id


def _refs(versions: dict[str, Version]) -> dict[str, tuple[str, bool | None]]:
    return {name: (v.ref, v.created) for name, v in versions.items()}


@pytest.mark.usefixtures("worker_env")
def test_the_pipeline_reruns_only_the_steps_whose_inputs_or_parameters_changed(
    store: Store, tmp_path: Path, counted: Callable[[], Counter[str]]
) -> None:
    source = shutil.copytree(EXAMPLE_SALES, tmp_path / "sales")

    first, run = _run(source)
    assert counted() == {"featurize": 1, "train": 1}
    assert _refs(first) == {
        "raw": ("raw/sales@1", True),
        "features": ("features/sales@1", True),
        "model": ("models/sales@1", True),
    }
    states = task_states(run)
    assert states["featurize"] == ("Completed", "featurize made features/sales@1 (raw/sales@1, window=7)")
    assert states["train"] == ("Completed", "train made models/sales@1 (features/sales@1, alpha=0.1)")
    assert artifact_keys(run) == ["gitfree-features-sales", "gitfree-models-sales"]
    model = store.show("models/sales@1")
    assert (model.author.orchestrator, model.author.pipeline) == ("prefect", "gitfree-sales-pipeline")
    assert [str(i) for i in model.inputs] == ["features/sales@1"]
    assert model.metadata["params"] == {"alpha": 0.1}
    assert set(model.metrics) == {"rmse", "rows"}
    assert model.metrics["rows"] == 42  # 2 series of 28 days, 7 days each before the first feature

    # Unchanged raw data: no step body runs; each task ends Completed with the line, and publishes nothing.
    again, run = _run(source)
    assert counted() == {"featurize": 1, "train": 1}
    assert _refs(again) == {
        "raw": ("raw/sales@1", False),
        "features": ("features/sales@1", False),
        "model": ("models/sales@1", False),
    }
    states = task_states(run)
    assert states["featurize"] == ("Completed", "features/sales@1 is up to date (raw/sales@1, window=7)")
    assert states["train"] == ("Completed", "models/sales@1 is up to date (features/sales@1, alpha=0.1)")
    assert artifact_keys(run) == []

    # One raw file changed: all three run.
    with (source / "store-b.csv").open("a", encoding="utf-8") as f:
        f.write("2026-10-29,101\n")
    changed, _ = _run(source)
    assert counted() == {"featurize": 2, "train": 2}
    assert _refs(changed) == {
        "raw": ("raw/sales@2", True),
        "features": ("features/sales@2", True),
        "model": ("models/sales@2", True),
    }

    # Only train's parameter changed: only train runs.
    retrained, run = _run(source, alpha=0.5)
    assert counted() == {"featurize": 2, "train": 3}
    assert _refs(retrained) == {
        "raw": ("raw/sales@2", False),
        "features": ("features/sales@2", False),
        "model": ("models/sales@3", True),
    }
    assert task_states(run)["featurize"][1] == "features/sales@2 is up to date (raw/sales@2, window=7)"
    assert store.show("models/sales@3").metrics["rmse"] != store.show("models/sales@2").metrics["rmse"]

    # One event per version made, none for the runs that made none (events arrive in order: once the last
    # run's is in, an event of the no-op run would be too).
    wait_for(lambda: committed(pipeline.MODEL, store.url) == [1, 2, 3])
    assert committed(pipeline.FEATURES, store.url) == [1, 2]


def _assert_one_version_of_each(store: Store, counter: Path, results: list[dict[str, Any]]) -> None:
    assert body_runs(counter) == {"featurize": 1, "train": 1}
    for name, ref in (("raw", "raw/sales@1"), ("features", "features/sales@1"), ("model", "models/sales@1")):
        assert [r["versions"][name][0] for r in results] == [ref, ref]
        assert sorted(bool(r["versions"][name][1]) for r in results) == [False, True], name
    for dataset in ("raw/sales", pipeline.FEATURES, pipeline.MODEL):
        assert [v.number for v in store.log(dataset)] == [1]
    keys = sorted(artifact_keys(results[0]["run"]) + artifact_keys(results[1]["run"]))
    assert keys == ["gitfree-features-sales", "gitfree-models-sales"]


@pytest.mark.usefixtures("worker_env")
def test_two_pipelines_started_together_on_new_data_make_one_version_of_each(
    store: Store, tmp_path: Path, counted: Callable[[], Counter[str]]
) -> None:
    """Two flow runs in two threads, released at once: one commit of the raw data, one body run per step (the
    other run waits for the step's claim and returns its version), one artifact per version."""
    source = shutil.copytree(EXAMPLE_SALES, tmp_path / "sales")
    go = threading.Barrier(2)

    def run() -> dict[str, Any]:
        go.wait()
        versions, run = _run(source)
        return {"run": run, "versions": {name: [v.ref, v.created] for name, v in versions.items()}}

    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(run), pool.submit(run)]]
    _assert_one_version_of_each(store, tmp_path / "body-runs.txt", results)


@pytest.mark.skipif(not FULL, reason="two worker processes: GITFREE_RELIABILITY=full (17 s here, 2 cores under load)")
def test_two_pipelines_started_together_in_two_processes(store: Store, seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    """The same race between two processes (two workers), released at once after their imports."""
    from prefect.settings import PREFECT_API_URL

    source = shutil.copytree(EXAMPLE_SALES, tmp_path / "sales")
    counter, go = tmp_path / "body-runs.txt", tmp_path / "go"
    workers = []
    for i in range(2):
        env = {
            **os.environ,
            **seaweedfs.env(),
            "GITFREE_STORE": store.url,
            "GITFREE_CACHE_DIR": str(tmp_path / f"cache-{i}"),
            "PREFECT_API_URL": PREFECT_API_URL.value(),
        }
        code = (
            f"import sys; sys.path[:0] = [{str(TESTS)!r}]\n"
            "from on_prefect.step_helpers import pipeline_worker\n"
            f"pipeline_worker({str(source)!r}, {str(counter)!r}, {str(tmp_path / f'ready-{i}')!r}, {str(go)!r})\n"
        )
        workers.append(
            subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    wait_for(lambda: all((tmp_path / f"ready-{i}").exists() for i in range(2)) or any(w.poll() for w in workers))
    go.touch()
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-3000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    _assert_one_version_of_each(store, counter, results)
