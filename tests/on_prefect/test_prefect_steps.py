"""Versioned steps as Prefect tasks (``gitfree.tasks.step``) and the example pipeline ``sales_pipeline``: real
flow runs under the session's Prefect server, against SeaweedFS and a file store. The step bodies count
their runs in a file (``step_helpers.counting``: the same body, hence the same step keys)."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from figures import FULL
from helpers import write_tree
from on_prefect.prefect_helpers import wait_for
from on_prefect.step_helpers import (
    EXAMPLE_SALES,
    artifact_keys,
    body_runs,
    committed,
    counting,
    sleepy_step,
    task_states,
)
from prefect import flow, task
from prefect.cache_policies import INPUTS, NO_CACHE

import gitfree
import gitfree.tasks
from gitfree import Store, Version
from gitfree.flows import pipeline
from gitfree.tasks import GitfreeStore, artifact_key
from gitfree.testing import CountingProxy, Faults, SeaweedFS
from gitfree.versioning import GitfreeError, InputError, NotFoundError
from gitfree.versioning.models import Lease

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
    store: Store,
    seaweedfs: SeaweedFS,
    tmp_path: Path,
    counted: Callable[[], Counter[str]],
    monkeypatch: pytest.MonkeyPatch,
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
    # The whole pipeline then reads a few records (through a counting proxy): it writes nothing.
    with CountingProxy(seaweedfs.s3_port) as proxy:
        monkeypatch.setenv("GITFREE_ENDPOINT_URL", proxy.endpoint)
        again, run = _run(source)
        requests = proxy.take().requests
    monkeypatch.setenv("GITFREE_ENDPOINT_URL", seaweedfs.endpoint)
    assert set(requests) == {"GET"} and requests.total() <= 12, requests
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


def _count(counter: Path, name: str) -> int:
    """Note one run of the body ``name``; how many runs of it so far."""
    with counter.open("a", encoding="utf-8") as f:
        f.write(f"{name}\n")
    return body_runs(counter)[name]


def test_a_retried_step_makes_one_version_and_publishes_it_once(
    make_store: Callable[..., Store], dataset: str, tmp_path: Path
) -> None:
    """A body failing once is run again; an attempt that committed and then lost its step note, or that noted
    it and died before publishing, is finished by the retry without running the body again (the bodies write
    random bytes: a second run would be a second version)."""
    store, counter = make_store("file"), tmp_path / "body-runs.txt"
    store.commit(f"{dataset}-raw", write_tree(tmp_path / "raw", {"r.csv": b"1\n"}))
    retried = {"inputs": {"raw": f"{dataset}-raw@latest"}, "retries": 1, "retry_delay_seconds": 0}

    @gitfree.tasks.step(f"{dataset}-a", **retried)  # type: ignore[arg-type]
    def fails_once(raw: Path, out: Path) -> None:
        if _count(counter, "fails_once") == 1:
            raise RuntimeError("the worker ran out of memory")
        (out / "a").write_text(uuid.uuid4().hex)

    @gitfree.tasks.step(f"{dataset}-b", **retried)  # type: ignore[arg-type]
    def noted_late(raw: Path, out: Path) -> None:
        _count(counter, "noted_late")
        (out / "b").write_text(uuid.uuid4().hex)

    @gitfree.tasks.step(f"{dataset}-c", **retried)  # type: ignore[arg-type]
    def published_late(raw: Path, out: Path) -> None:
        _count(counter, "published_late")
        (out / "c").write_text(uuid.uuid4().hex)

    @flow
    def with_retries() -> list[Version]:
        return [fails_once(store=store), noted_late(store=store), published_late(store=store)]

    def note_of(output: str) -> re.Pattern[str]:
        return re.compile(rf"^steps/[0-9a-f]{{64}}/{re.escape(output)}@")

    with Faults(store) as faults:
        lost = faults.fail("create", note_of(f"{dataset}-b"), error=GitfreeError("connection lost"))
        died = faults.fail("create", note_of(f"{dataset}-c"), error=RuntimeError("worker lost"), when="after")
        state = with_retries(return_state=True)
    versions: list[Version] = state.result()
    assert lost.fired and died.fired
    assert body_runs(counter) == {"fails_once": 2, "noted_late": 1, "published_late": 1}
    assert [(v.ref, v.created) for v in versions] == [(f"{dataset}-{x}@1", True) for x in "abc"]
    for x in "abc":
        assert [v.number for v in store.log(f"{dataset}-{x}")] == [1]
    run = state.state_details.flow_run_id
    assert artifact_keys(run) == [artifact_key(f"{dataset}-{x}") for x in "abc"]
    messages = {name: message for name, (_, message) in task_states(run).items()}
    assert messages["published_late"] == f"published_late made {dataset}-c@1 in an earlier attempt of this task run"
    assert messages["noted_late"] == f"noted_late made {dataset}-b@1 ({dataset}-raw@1)"
    for x in "abc":
        wait_for(lambda x=x: committed(f"{dataset}-{x}", store.url) == [1])  # type: ignore[misc]


def test_step_tasks_submitted_together_bad_calls_and_a_plain_step_under_task(
    make_store: Callable[..., Store], dataset: str, tmp_path: Path
) -> None:
    """Three submits at once, two with the same parameters (one body run: the other waits for its claim), and a
    step taking another's future; ``force=True``; a ``GitfreeStore`` block as the store. A datetime parameter
    fails at once in one line, not retried; a typo in a keyword is one line before any task run; a body that
    raises leaves no version and no claim. ``@task`` over ``@gitfree.step`` runs the step but records no flow
    run and publishes nothing."""
    store, counter = make_store("file"), tmp_path / "body-runs.txt"
    store.commit(f"{dataset}-raw", write_tree(tmp_path / "raw", {"r.csv": b"1\n"}))
    raw = {"raw": f"{dataset}-raw@latest"}

    @gitfree.tasks.step(f"{dataset}-scaled", inputs=raw, retries=2)
    def scaled(raw: Path, out: Path, factor: Any = 1) -> None:
        _count(counter, f"scaled-{factor}")
        time.sleep(0.3)  # the three submits overlap
        (out / "x").write_text(str(factor))

    @gitfree.tasks.step(f"{dataset}-doubled", inputs={"scaled": None})
    def doubled(scaled: Path, out: Path) -> None:
        _count(counter, "doubled")
        (out / "x").write_text((scaled / "x").read_text() * 2)

    @gitfree.tasks.step(f"{dataset}-boom", inputs=raw, retries=0)
    def boom(raw: Path, out: Path) -> None:
        (out / "half-written").write_text("x")
        raise ValueError("the body failed half way")

    @task
    @gitfree.step(f"{dataset}-plain", inputs=raw, store=store)
    def plain(raw: Path, out: Path, factor: int = 1) -> None:
        _count(counter, "plain")
        (out / "x").write_text(str(factor))

    block = GitfreeStore(url=store.url, cache_dir=str(tmp_path / "block-cache"))

    @flow
    def fan_out() -> dict[str, Any]:
        futures = [scaled.submit(factor=factor, store=store) for factor in (2, 3, 2)]
        chained = doubled.submit(scaled=futures[1], store=store)
        made = [future.result() for future in futures]
        newest = 2 if made[0].number > made[1].number else 3  # the factor of the head
        try:
            scaled(factr=2, store=store)
            typo = ""
        except InputError as exc:
            typo = str(exc)
        return {
            "made": made,
            "chained": chained.result(),
            "forced": scaled(factor=newest, store=store, force=True),
            "block": scaled(factor=2, store=block),
            "bad": scaled(factor=datetime.now(UTC), store=store, return_state=True),
            "boom": boom(store=store, return_state=True),
            "typo": typo,
            "plain": plain(factor=2),
        }

    state = fan_out(return_state=True)
    got = state.result()
    made = got["made"]
    newest, factor = (made[0], 2) if made[0].number > made[1].number else (made[1], 3)
    assert body_runs(counter) == {"scaled-2": 1, "scaled-3": 1, "doubled": 1, "plain": 1, f"scaled-{factor}": 2}
    assert made[0].ref == made[2].ref != made[1].ref
    assert sorted([bool(made[0].created), bool(made[2].created)]) == [False, True]
    assert sorted(v.number for v in store.log(f"{dataset}-scaled")) == [1, 2]
    assert [str(i) for i in got["chained"].inputs] == [made[1].ref]
    assert (got["forced"].ref, got["forced"].created) == (newest.ref, False)  # ran; the same bytes, no version
    assert (got["block"].ref, got["block"].created) == (made[0].ref, False)  # up to date, through the block

    assert got["bad"].is_failed()
    assert "the parameter 'factor' is not a JSON value" in got["bad"].message
    assert _task_run(got["bad"]).run_count == 1  # an InputError is not retried
    assert got["typo"].startswith("cannot call the step task scaled: got an unexpected keyword argument 'factr';")
    assert "\n" not in got["typo"]
    assert got["boom"].is_failed() and "the body failed half way" in got["boom"].message
    with pytest.raises(NotFoundError):
        store.show(f"{dataset}-boom")
    assert [k for k in store.backend.list("steps/") if k.endswith("/claim.json")] == []

    plain_version = got["plain"]
    assert (plain_version.ref, plain_version.created, plain_version.author.orchestrator) == (
        f"{dataset}-plain@1",
        True,
        None,
    )
    keys = artifact_keys(state.state_details.flow_run_id)
    assert keys == sorted([artifact_key(f"{dataset}-doubled")] + [artifact_key(f"{dataset}-scaled")] * 2)


def _task_run(state: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_task_run(state.state_details.task_run_id)


def _body(raw: Path, out: Path, window: int = 7) -> None:
    (out / "x").write_text(str(window))


def test_a_step_task_is_called_with_keywords_and_refuses_prefects_cache_and_its_call_keywords() -> None:
    made = gitfree.tasks.step("features", inputs={"raw": "raw@latest"})(_body)
    assert str(inspect.signature(made.fn)) == (
        "(*, raw: 'str | Ref | Version' = 'raw@latest', window: 'int' = 7, force: 'bool' = False, "
        "store: 'StoreLike' = None) -> 'Version'"
    )
    assert str(inspect.signature(made.step)) == (
        "(*, raw: 'str | Ref | Version' = 'raw@latest', window: 'int' = 7, force: 'bool' = False) -> 'Version'"
    )
    assert made.cache_policy is NO_CACHE
    assert isinstance(made.with_options(retries=3), gitfree.tasks.StepTask)
    assert gitfree.tasks.step("features", cache_policy=NO_CACHE)(_body).cache_policy is NO_CACHE
    for options in ({"cache_policy": INPUTS}, {"cache_key_fn": lambda *_: "k"}):
        with pytest.raises(InputError, match=r"cannot take cache_\w+=: whether its body runs is decided by its step"):
            gitfree.tasks.step("features", **options)(_body)
        with pytest.raises(InputError, match="Prefect's cache would return an old version"):
            made.with_options(**options)
    for name in ("store", "wait_for", "return_state"):
        body = _with_parameter(name)
        with pytest.raises(InputError, match=rf"has a parameter '{name}', which a call of a step task takes"):
            gitfree.tasks.step("features")(body)


def _with_parameter(name: str) -> Callable[..., None]:
    namespace: dict[str, Any] = {}
    exec(f"def body(out, {name}=None):\n    pass\n", namespace)  # noqa: S102 - a parameter named by the test
    return namespace["body"]  # type: ignore[no-any-return]


def _doomed_worker(store: Store, seaweedfs: SeaweedFS, tmp_path: Path, output: str, raw: str, parts: list[int]) -> Any:
    """A worker process running ``sleepy`` (step_helpers) in a flow run, its claims renewed every second."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        **seaweedfs.env(),
        "GITFREE_STORE": store.url,
        "GITFREE_CACHE_DIR": str(tmp_path / "doomed-cache"),
        "GITFREE_LEASE_TTL": "6",
        "GITFREE_TEST_STARTED": str(tmp_path / "started"),
        "GITFREE_TEST_SLEEP": "120",
        "TMPDIR": str(tmp_path / "doomed-tmp"),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }
    code = (
        f"import sys; sys.path[:0] = [{str(TESTS)!r}]\n"
        "from on_prefect.step_helpers import doomed_worker\n"
        f"doomed_worker({output!r}, {raw!r}, {parts!r})\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    started = [tmp_path / f"started-{part}" for part in parts]
    wait_for(lambda: all(p.exists() for p in started) or worker.poll() is not None, timeout=120)
    assert worker.poll() is None, worker.communicate()[1][-3000:]
    return worker


@pytest.mark.skipif(not FULL, reason="two worker processes and a lease to expire: GITFREE_RELIABILITY=full (20 s)")
def test_a_cancelled_flow_run_releases_its_claim_and_a_killed_ones_are_taken_over(
    store: Store, seaweedfs: SeaweedFS, dataset: str, tmp_path: Path
) -> None:
    """Cancelled (SIGTERM, as Prefect's runner sends): the body in the flow's thread is interrupted and the
    claim released. Killed (SIGKILL, the runner's after its grace period): the claims stay; the next run on
    the same machine takes one over at once (its process is gone), one from another machine only once it
    expired (lease TTL 6 s here, clock skew 0.5 s)."""
    raw, output = f"{dataset}-raw", f"{dataset}-out"
    store.commit(raw, write_tree(tmp_path / "raw", {"r.csv": b"1\n"}))
    store.settings = store.settings.model_copy(update={"clock_skew": 0.5})

    def claims() -> list[str]:
        return [k for k in store.backend.list("steps/") if k.endswith("/claim.json")]

    (tmp_path / "doomed-tmp").mkdir()
    worker = _doomed_worker(store, seaweedfs, tmp_path, output, raw, [0])
    assert len(claims()) == 1
    assert [p.name.startswith("gitfree-step-sleepy-") for p in (tmp_path / "doomed-tmp").iterdir()] == [True]
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=120)
    assert claims() == []
    assert list((tmp_path / "doomed-tmp").glob("gitfree-step-*")) == []
    with pytest.raises(NotFoundError):
        store.show(output)

    worker = _doomed_worker(store, seaweedfs, tmp_path, output, raw, [1, 2])
    os.killpg(worker.pid, signal.SIGKILL)
    worker.communicate(timeout=60)
    assert len(claims()) == 2
    made = sleepy_step(output, raw)
    keys = {part: made.step.key({"raw": store.show(raw)}, {"part": part}) for part in (1, 2)}
    elsewhere = _forge_claim(store, keys[2], node="another-machine")

    @flow
    def resume(part: int) -> Version:
        version: Version = made(part=part, store=store)
        return version

    # The other machine's claim first, while it has not expired yet: the step waits for it to expire.
    state = resume(2, return_state=True)
    assert state.result().ref == f"{output}@1"
    (waited,) = _task_runs(state)
    left = (elsewhere.expires_at + timedelta(seconds=0.5) - waited.start_time).total_seconds()
    state = resume(1, return_state=True)
    assert state.result().ref == f"{output}@2"
    (taken_over,) = _task_runs(state)
    print(
        f"claims of a killed worker: this machine's taken over in {taken_over.total_run_time.total_seconds():.2f} "
        f"s, another's in {waited.total_run_time.total_seconds():.2f} s ({left:.2f} s before it expired)"
    )
    assert left > 1
    assert waited.total_run_time.total_seconds() >= left
    assert taken_over.total_run_time.total_seconds() < 1
    assert claims() == []


def _forge_claim(store: Store, key: str, **changes: Any) -> Lease:
    """Rewrite the claim of the step with this key (``node=``: as if another machine held it)."""
    from gitfree.versioning import layout

    data, etag = store.backend.get(layout.step_claim_key(key))
    lease = Lease.model_validate_json(data).model_copy(update=changes)
    store.backend.replace(layout.step_claim_key(key), lease.model_dump_json().encode(), etag)
    return lease


def _task_runs(flow_state: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id]))
        return list(client.read_task_runs(flow_run_filter=run))


@pytest.mark.skipif(not FULL, reason="a measurement: GITFREE_RELIABILITY=full (5 flow runs, 14 s)")
@pytest.mark.usefixtures("worker_env")
def test_a_noop_rerun_of_the_pipeline_reads_a_few_records(
    store: Store, seaweedfs: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/benchmarks.md, "Versioned steps in Prefect": the whole pipeline on unchanged data, timed (the flow
    run as a user starts it, median of 3) and through a counting proxy (its S3 requests, by method)."""
    source = shutil.copytree(EXAMPLE_SALES, tmp_path / "sales")
    _run(source)
    times = []
    for _ in range(3):
        started = time.monotonic()
        versions, _ = _run(source)
        times.append(time.monotonic() - started)
        assert not any(v.created for v in versions.values())
    with CountingProxy(seaweedfs.s3_port) as proxy:
        monkeypatch.setenv("GITFREE_ENDPOINT_URL", proxy.endpoint)
        proxy.take()
        versions, _ = _run(source)
        counts = proxy.take()
    assert not any(v.created for v in versions.values())
    by_method = ", ".join(f"{m} {n}" for m, n in sorted(counts.requests.items()))
    print(f"no-op rerun of sales_pipeline: {statistics.median(times):.2f} s, {counts.total} requests ({by_method})")
    assert set(counts.requests) <= {"GET", "HEAD"}, "a no-op rerun writes nothing"
    assert counts.total <= 16


@pytest.mark.usefixtures("worker_env")
def test_gitfree_flows_sales_pipeline_runs_once_and_refuses_bad_arguments_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gitfree.flows.__main__ import main

    source = shutil.copytree(EXAMPLE_SALES, tmp_path / "sales")
    runner = CliRunner()
    first = runner.invoke(main, ["sales-pipeline", str(source)])
    assert first.exit_code == 0, (first.output, first.exception)
    assert first.stdout.splitlines() == [
        "raw: raw/sales@1 (new)",
        "features: features/sales@1 (new)",
        "model: models/sales@1 (new)",
    ]
    second = runner.invoke(main, ["sales-pipeline", str(source), "--alpha", "0.5"])
    assert second.exit_code == 0, (second.output, second.exception)
    assert second.stdout.splitlines() == [
        "raw: raw/sales@1 (unchanged)",
        "features: features/sales@1 (unchanged)",
        "model: models/sales@2 (new)",
    ]
    for args, says in (
        (["--window", "0"], "--window 0 is not a number of days: give 1 or more"),
        (["--alpha", "nan"], "--alpha nan is not a penalty: give a number of 0 or more"),
        (["--alpha", "-1"], "--alpha -1.0 is not a penalty: give a number of 0 or more"),
        (["--raw", "Raw/Sales"], "invalid dataset name 'Raw/Sales'"),
        (["--cron", "nightly"], "--cron 'nightly' is not a cron schedule"),
    ):
        bad = runner.invoke(main, ["sales-pipeline", str(source), *args])
        assert (bad.exit_code, len(bad.stderr.splitlines())) == (2, 1), bad.output
        assert bad.stderr.startswith("error: ") and says in bad.stderr, bad.stderr
    missing = runner.invoke(main, ["sales-pipeline", str(tmp_path / "nothing")])
    assert (missing.exit_code, missing.stderr.strip()) == (
        2,
        f"error: the ingestion source {tmp_path / 'nothing'} does not exist: give an existing file or directory",
    )
