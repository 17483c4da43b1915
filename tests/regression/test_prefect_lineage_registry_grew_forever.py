"""The Prefect lineage registry (what each flow run pulled, in this process) grew with every flow run.

Issue 14: ``gitfree.tasks._runtime`` kept the versions pulled by every flow run of the process, keyed
by flow run id, and never forgot one: a worker serving deployments for weeks (``gitfree-flows
pipeline``, ``flow.serve``) grew it by one entry per flow run that pulled. Now a run is forgotten once
it has ended, and at most ``PULLED_RUNS_KEPT`` runs that have not ended are kept (the least recently
used goes first).

Real Prefect flows (a temporary server for this module) and a local store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from helpers import write_tree
from on_prefect.prefect_helpers import prefect_server
from prefect import flow

from gitfree import Store, Version
from gitfree.tasks import _runtime, commit_dataset, pull_dataset


@pytest.fixture(scope="module", autouse=True)
def _prefect_server() -> Iterator[None]:
    with prefect_server():
        yield


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "store").as_uri(), cache_dir=tmp_path / "cache")


def test_many_flow_runs_in_one_process_leave_the_registry_small(store: Store, tmp_path: Path) -> None:
    store.commit("raw", write_tree(tmp_path / "raw", {"r": b"raw"}))
    _runtime._pulled.clear()

    @flow
    def pull_once(n: int) -> int:
        return pull_dataset("raw@1", tmp_path / f"pulled-{n}", store=store).number

    runs = 12
    for n in range(runs):
        assert pull_once(n) == 1
    # Every run ended: only the newest may still be there (runs are forgotten when the next one pulls).
    assert len(_runtime._pulled) <= 1, f"{len(_runtime._pulled)} flow runs remembered after {runs} ended"


def test_a_running_flow_keeps_its_lineage_while_its_subflows_come_and_go(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a regression (nothing was ever forgotten before): the guard that forgetting ended runs first
    does not drop a run still going, even when more runs than the bound came and went meanwhile."""
    monkeypatch.setattr(_runtime, "PULLED_RUNS_KEPT", 4, raising=False)
    store.commit("raw", write_tree(tmp_path / "raw", {"r": b"raw"}))
    store.commit("other", write_tree(tmp_path / "other", {"o": b"other"}))

    @flow
    def child(n: int) -> None:
        pull_dataset("other@1", tmp_path / f"child-{n}", store=store)

    @flow
    def parent() -> Version:
        pull_dataset("raw@1", tmp_path / "parent", store=store)
        for n in range(10):
            child(n)
        return commit_dataset("clean", write_tree(tmp_path / "clean", {"c": b"clean"}), store=store)

    made = parent()
    assert [str(i) for i in made.inputs] == ["raw@1"]
    assert len(_runtime._pulled) <= 4


def test_runs_that_never_end_are_bounded(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flow runs whose end this process never sees (their state is not final) are still bounded: at most
    ``PULLED_RUNS_KEPT``, the least recently used forgotten first."""
    version = store.commit("raw", write_tree(tmp_path / "raw", {"r": b"raw"}))
    monkeypatch.setattr(_runtime, "PULLED_RUNS_KEPT", 8, raising=False)
    _runtime._pulled.clear()
    current: dict[str, Any] = {}

    def contexts() -> tuple[Any, Any]:
        return current["flow"], None

    monkeypatch.setattr(_runtime, "_contexts", contexts)
    running = SimpleNamespace(is_final=lambda: False)
    ids = [uuid.uuid4() for _ in range(100)]
    for run_id in ids:
        current["flow"] = SimpleNamespace(flow_run=SimpleNamespace(id=run_id, state=running), flow=None)
        _runtime.record_pull(store, version)
    assert len(_runtime._pulled) == 8
    assert list(_runtime._pulled) == [str(i) for i in ids[-8:]]  # the most recent ones
    current["flow"] = SimpleNamespace(flow_run=SimpleNamespace(id=ids[-1], state=running), flow=None)
    assert [str(i) for i in _runtime.pulled_inputs(store, "clean")] == ["raw@1"]
