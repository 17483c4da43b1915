"""Lineage inside Prefect flow runs through run notes in the store (docs/design.md, "Lineage inside
orchestrator runs"): whatever process pulled a version, a commit later in the same flow run records it.

Real flows under the session's Prefect server, against SeaweedFS (and a SeaweedFS with a read-only identity).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import write_tree
from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner
from seaweedfs_reader import WithReader

from gitfree import InputRef, Store
from gitfree.tasks import _runtime, commit_dataset, pull_dataset
from gitfree.testing import Faults, SeaweedFS
from gitfree.versioning import GitfreeError, layout


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


@pytest.fixture
def worker_env(seaweedfs: SeaweedFS, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker process of the pool needs to reach the store (a ``Store`` does not travel to it)."""
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITFREE_STORE", store.url)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "worker-cache"))


@task
def pid() -> int:
    return os.getpid()


@pytest.mark.usefixtures("worker_env")
def test_a_pull_in_one_process_is_an_input_of_a_commit_in_another(store: Store, dataset: str, tmp_path: Path) -> None:
    """ProcessPoolTaskRunner: a task submitted runs in a pool process, one called directly in the flow's.
    raw is pulled in the pool and committed from in the flow's process; table the other way round."""
    store.commit(f"{dataset}-raw", write_tree(tmp_path / "raw", {"r": b"raw"}))
    store.commit(f"{dataset}-table", write_tree(tmp_path / "table", {"t": b"table"}))
    url = store.url  # the flow travels to the pool with its context: it must not hold a Store

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))  # type: ignore[arg-type] # Prefect's own annotation
    def spread() -> tuple[list[str], list[str], set[int]]:
        in_pool = pull_dataset.submit(f"{dataset}-raw@1", str(tmp_path / "in-pool"), store=url)
        pull_dataset(f"{dataset}-table", str(tmp_path / "here"), store=url)  # in this process
        in_pool.result()
        here = commit_dataset(f"{dataset}-a", write_tree(tmp_path / "a", {"a": b"a"}), store=url)
        there = commit_dataset.submit(f"{dataset}-b", str(write_tree(tmp_path / "b", {"b": b"b"})), store=url)
        pids = {pid.submit().result(), os.getpid()}
        return [str(i) for i in here.inputs], [str(i) for i in there.result().inputs], pids

    here, there, pids = spread()
    assert len(pids) == 2, "the pool's task ran in this process"
    assert here == there == [f"{dataset}-raw@1", f"{dataset}-table@1"]
    assert _runtime._pulled_from.get(store.url) is not None  # the flow's own pull; the pool's is not here


def test_auto_inputs_off_and_explicit_inputs(store: Store, dataset: str, tmp_path: Path) -> None:
    raw, other = f"{dataset}-raw", f"{dataset}-other"
    store.commit(raw, write_tree(tmp_path / "raw", {"r": b"raw"}))
    store.commit(other, write_tree(tmp_path / "other", {"o": b"other"}))
    store.commit(dataset, write_tree(tmp_path / "v1", {"v": b"1"}))

    @flow
    def both() -> tuple[list[str], list[str], list[str]]:
        pull_dataset(raw, tmp_path / "in", store=store)
        pull_dataset(f"{raw}@1", tmp_path / "again", store=store)  # the same version twice: one input
        pull_dataset(dataset, tmp_path / "own", store=store)  # the dataset's own version: the parent, no input
        auto = commit_dataset(f"{dataset}-a", write_tree(tmp_path / "a", {"a": b"a"}), store=store, inputs=[f"{raw}@1"])
        explicit_only = commit_dataset(
            f"{dataset}-b", write_tree(tmp_path / "b", {"b": b"b"}), store=store, inputs=[other], auto_inputs=False
        )
        updated = commit_dataset(dataset, write_tree(tmp_path / "own", {"v": b"2"}), store=store)
        return [str(i) for i in auto.inputs], [str(i) for i in explicit_only.inputs], [str(i) for i in updated.inputs]

    assert both() == ([f"{raw}@1", f"{dataset}@1"], [f"{other}@1"], [f"{raw}@1"])


def test_a_retried_pull_is_noted_once_and_a_retried_commit_reads_the_same_inputs(
    store: Store, dataset: str, tmp_path: Path
) -> None:
    raw = f"{dataset}-raw"
    store.commit(raw, write_tree(tmp_path / "raw", {"r": b"raw"}))
    retrying_pull = pull_dataset.with_options(retries=2, retry_delay_seconds=0)
    retrying_commit = commit_dataset.with_options(retries=2, retry_delay_seconds=0)

    @flow
    def flaky() -> tuple[str, list[str], bool | None]:
        from prefect.runtime import flow_run

        retrying_pull(f"{raw}@1", tmp_path / "in", store=store)
        made = retrying_commit(dataset, write_tree(tmp_path / "out", {"o": b"o"}), store=store)
        return flow_run.id, [str(i) for i in made.inputs], made.created

    with Faults(store) as faults:
        # The pull's first attempt loses the connection reading the version; its retry pulls and notes it.
        lost = faults.fail("get", layout.version_key(raw, 1), error=GitfreeError("connection lost"), times=1)
        # The commit's first attempt dies once its record is written; the retry reads the notes again.
        died = faults.fail(
            ["create", "replace"], layout.latest_key(dataset), error=RuntimeError("worker lost"), times=1
        )
        run, inputs, created = flaky()
    assert lost.fired and died.fired
    assert (inputs, created) == ([f"{raw}@1"], True)
    assert [v.number for v in store.log(dataset)] == [1]
    assert [k for k in store.backend.list(layout.run_prefix(f"prefect:{run}"))] == [
        layout.run_use_key(f"prefect:{run}", raw, 1)
    ]


def test_a_version_pulled_from_another_store_is_found_by_this_process(
    make_store: Callable[..., Store], dataset: str, tmp_path: Path
) -> None:
    """Cross-store: the note is in the store pulled from; a commit to another store finds it there when its
    process pulled from that store (any flow run): the store is remembered, not the run."""
    data, models = make_store("s3"), make_store("file")
    data.commit(f"{dataset}-raw", write_tree(tmp_path / "raw", {"r": b"raw"}))

    @flow
    def train() -> list[InputRef]:
        pull_dataset(f"{dataset}-raw", tmp_path / "in", store=data)
        return commit_dataset(f"{dataset}-model", write_tree(tmp_path / "m", {"m": b"m"}), store=models).inputs

    @flow
    def unrelated() -> list[InputRef]:  # a later run pulled nothing: the stores it knows hold no note of it
        return commit_dataset(f"{dataset}-other", write_tree(tmp_path / "o", {"o": b"o"}), store=models).inputs

    assert train() == [InputRef(dataset=f"{dataset}-raw", number=1, store=data.url)]
    assert unrelated() == []
    assert len(_runtime._pulled_from) <= _runtime.OTHER_STORES_KEPT


def test_a_store_gone_since_it_was_pulled_from_is_listed_once(
    make_store: Callable[..., Store], dataset: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The other store this process pulled from stops answering: the next commit still succeeds (a warning),
    and forgets it, so later commits do not ask it again."""
    models = make_store("file")
    server = SeaweedFS(bucket="gitfree-gone")
    with server:
        gone = Store(f"s3://{server.bucket}/p", cache_dir=tmp_path / "gone", **server.store_options())
        gone.commit("raw", write_tree(tmp_path / "raw", {"r": b"raw"}))

        @flow
        def pull_only() -> None:
            pull_dataset("raw", tmp_path / "in", store=gone)

        pull_only()
    assert gone.url in _runtime._pulled_from

    @flow
    def commit_twice() -> list[list[InputRef]]:
        return [
            commit_dataset(f"{dataset}-{n}", write_tree(tmp_path / f"m{n}", {"m": b"m"}), store=models).inputs
            for n in range(2)
        ]

    with caplog.at_level(logging.WARNING, logger="gitfree"):
        assert commit_twice() == [[], []]
    warned = [r for r in caplog.records if r.getMessage().startswith("could not read the versions this flow run")]
    assert len(warned) == 1 and gone.url in warned[0].getMessage()
    assert all(not isinstance(arg, BaseException) for r in caplog.records for arg in (r.args or ()))
    assert gone.url not in _runtime._pulled_from


@pytest.fixture(scope="module")
def with_reader() -> Iterator[WithReader]:
    server = WithReader(bucket="gitfree-readonly")  # its __enter__ says SeaweedFS
    with server:
        yield server


def test_a_pull_by_a_worker_that_may_not_write_succeeds_with_a_warning(
    with_reader: WithReader, dataset: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"s3://{with_reader.bucket}/t-{uuid.uuid4().hex[:8]}"
    Store(url, cache_dir=tmp_path / "w", **with_reader.store_options()).commit(
        "raw", write_tree(tmp_path / "raw", {"r": b"raw"})
    )
    reader = Store(url, cache_dir=tmp_path / "r", **with_reader.reader_options())

    @flow
    def read_only() -> int:
        return pull_dataset("raw", tmp_path / "in", store=reader).number

    with caplog.at_level(logging.WARNING):
        assert read_only() == 1
    assert (tmp_path / "in" / "r").read_bytes() == b"raw"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(w.startswith("raw@1 was pulled, but noting it as used in the run 'prefect:") for w in warned), warned
    assert any("could not note it as used in this flow run" in w for w in warned), warned
    assert list(reader.backend.list(layout.RUNS)) == []
