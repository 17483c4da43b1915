"""The Prefect lineage registry (what each flow run pulled, in this process) grew with every flow run.

Issue 14: ``gitfree.tasks._runtime`` kept the versions pulled by every flow run of the process, keyed
by flow run id, and never forgot one: a worker serving deployments for weeks (``gitfree-flows
pipeline``, ``flow.serve``) grew it by one entry per flow run that pulled. A bounded registry fixed the
growth, but not its other flaw (issue 15): a pull and a commit of one flow run in two processes (a
process or cluster task runner, two workers) saw nothing of each other. Now a pull notes the version in
its store (``runs/prefect:<flow run id>/…``) and a commit lists its run's notes there: nothing of any
run is kept in memory, so a long-lived process stays the same size however many runs it serves.

Real Prefect flows (the test process's server: ``prefect_harness``) and a local store.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from figures import FULL
from helpers import write_tree
from prefect import flow
from pydantic import BaseModel

from gitfree import Store, Version
from gitfree.tasks import _runtime, commit_dataset, pull_dataset
from gitfree.versioning import models

RUNS = 200 if FULL else 12
"""Flow runs served by one process (``make reliability``: 200; each costs Prefect about a second here)."""


@pytest.fixture(scope="module", autouse=True)
def _prefect_server(prefect_harness: None) -> None:
    """The process's temporary Prefect server (tests/conftest.py's ``prefect_harness``) for this module."""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store((tmp_path / "store").as_uri(), cache_dir=tmp_path / "cache")


def _records_in_memory() -> int:
    """Live gitfree records (versions, their parts, input refs, notes...) in this process, once Prefect's
    queues of events and logs (which may still hold a task's result while the server catches up) are sent."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all(at_exit=False)
    APILogWorker.drain_all(at_exit=False)
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, BaseModel) and type(o).__module__ == models.__name__)


def test_many_flow_runs_in_one_process_keep_nothing_in_memory(store: Store, tmp_path: Path) -> None:
    """Each run pulls one of four versions and commits from it: each commit's inputs are its own run's pull,
    and after the first runs the process holds no more gitfree records however many runs follow."""
    for k in range(4):
        store.commit("raw", write_tree(tmp_path / f"raw{k}", {"r": str(k).encode()}))
    source = write_tree(tmp_path / "clean", {"c": b"the same bytes in every run"})

    @flow
    def serve(n: int) -> list[str]:
        pull_dataset(f"raw@{n % 4 + 1}", tmp_path / "in", store=store, overwrite=True)
        return [str(i) for i in commit_dataset("clean", source, store=store).inputs]

    for n in range(2):  # warm up: what the first runs leave (imports, clients, caches) is not per run
        assert serve(n) == [f"raw@{n % 4 + 1}"]
    before = _records_in_memory()
    for n in range(2, RUNS):
        assert serve(n) == [f"raw@{n % 4 + 1}"], f"run {n}"
    after = _records_in_memory()
    assert after - before <= 2, f"{after - before} more gitfree records in memory after {RUNS - 2} more flow runs"
    # What a process remembers is the stores it pulled from (this test's, earlier tests'), never the runs.
    assert store.url in _runtime._pulled_from and len(_runtime._pulled_from) <= _runtime.OTHER_STORES_KEPT
    assert len(store.log("clean")) == RUNS  # other inputs than the head's: a new version each run


def test_a_running_flow_keeps_its_lineage_while_its_subflows_come_and_go(store: Store, tmp_path: Path) -> None:
    """A subflow is a flow run of its own: what it pulls is its lineage, not its parent's."""
    store.commit("raw", write_tree(tmp_path / "raw", {"r": b"raw"}))
    store.commit("other", write_tree(tmp_path / "other", {"o": b"other"}))

    @flow
    def child(n: int) -> None:
        pull_dataset("other@1", tmp_path / f"child-{n}", store=store)

    @flow
    def parent() -> Version:
        pull_dataset("raw@1", tmp_path / "parent", store=store)
        for n in range(3):
            child(n)
        return commit_dataset("clean", write_tree(tmp_path / "clean", {"c": b"clean"}), store=store)

    made = parent()
    assert [str(i) for i in made.inputs] == ["raw@1"]
