"""Prefect tasks retry only what a retry can fix, and say ``created`` / "unchanged" from ``Version.created``.

Issue "Trust", item 6 in part: ``pull_dataset("nosuch@1")`` was retried twice, 5 s apart, on a
NotFoundError. The tasks now carry ``retry_condition_fn=retry_if_transient``
(:func:`gitfree.versioning.errors.is_transient`). Also: ``Store.commit`` returns ``Version.created``;
the commit task publishes (artifact, event) when its task run made the version and logs "unchanged"
otherwise, and its result says which.

Real Prefect (the test process's temporary server: ``prefect_harness``), real SeaweedFS; the only injected faults are a
proxy whose upstream is down (a real refused connection) and a crash after a commit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from helpers import read_tree, write_tree
from on_prefect.prefect_helpers import committed_events, wait_for
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId

from gitfree import ConfigError, InputError, IntegrityError, NotFoundError, Store
from gitfree.tasks import _runtime, commit_dataset, pull_dataset
from gitfree.testing import CountingProxy, SeaweedFS, free_port


@pytest.fixture(scope="module", autouse=True)
def _prefect_server(prefect_harness: None) -> None:
    """The process's temporary Prefect server (tests/conftest.py's ``prefect_harness``) for this module."""


@pytest.fixture
def dataset() -> str:
    return f"ds-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


@dataclass(frozen=True)
class Outcome:
    """What a task run ended with, as its flow returns it (a flow returning the failed state would fail)."""

    task_run_id: uuid.UUID
    completed: bool
    value: Any
    """The task's result, or the exception it raised."""


def _outcome(state: Any) -> Outcome:
    return Outcome(state.state_details.task_run_id, state.is_completed(), state.result(raise_on_failure=False))


def _task_run(outcome: Outcome) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_task_run(outcome.task_run_id)


def _logs(outcome: Outcome) -> list[str]:
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[outcome.task_run_id])))
    return [log.message for log in logs]


# ------------------------------------------------------------------------------ permanent: one attempt


def _missing_version(store: Store, tmp_path: Path, dataset: str) -> Any:
    return pull_dataset(f"{dataset}@1", tmp_path / "out", store=store, return_state=True)


def _missing_path(store: Store, tmp_path: Path, dataset: str) -> Any:
    return commit_dataset(dataset, tmp_path / "nowhere", store=store, return_state=True)


def _wrong_secret(store: Store, tmp_path: Path, dataset: str) -> Any:
    store.commit(dataset, write_tree(tmp_path / "src", {"a": b"1"}))
    denied = Store(store.url, cache_dir=tmp_path / "c2", **{**_OPTIONS, "secret_access_key": "wr0ng"})
    return pull_dataset(f"{dataset}@1", tmp_path / "out", store=denied, return_state=True)


def _corrupt_object(store: Store, tmp_path: Path, dataset: str) -> Any:
    version = store.commit(dataset, write_tree(tmp_path / "src", {"a": b"the real bytes"}))
    [entry] = store.files(version)
    store.backend.put(f"files/md5/{entry.md5[:2]}/{entry.md5[2:]}", b"other bytes")
    fresh = Store(store.url, cache_dir=tmp_path / "c2", **_OPTIONS)
    return pull_dataset(f"{dataset}@1", tmp_path / "out", store=fresh, return_state=True)


_OPTIONS: dict[str, Any] = {}


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (_missing_version, NotFoundError),
        (_missing_path, InputError),
        (_wrong_secret, ConfigError),
        (_corrupt_object, IntegrityError),
    ],
    ids=["not-found", "missing-path", "wrong-credentials", "corrupt-object"],
)
def test_an_error_no_retry_can_fix_fails_the_task_at_once(
    store: Store, seaweedfs: SeaweedFS, tmp_path: Path, dataset: str, make: Callable[..., Any], error: type
) -> None:
    """The tasks' own retries (2, 5 s apart) are not used: one run, well under the first 5 s wait."""
    _OPTIONS.update(seaweedfs.store_options())

    @flow
    def run() -> Outcome:
        started = time.monotonic()
        outcome = _outcome(make(store, tmp_path, dataset))
        assert time.monotonic() - started < 5, f"{time.monotonic() - started:.1f}s: the task waited for a retry"
        return outcome

    outcome = run()
    assert not outcome.completed
    assert isinstance(outcome.value, error), outcome.value
    assert _task_run(outcome).run_count == 1
    assert any("cannot pass by trying again" in m for m in wait_for(lambda: _logs(outcome) or None))


# ------------------------------------------------------------------------------ transient: retried


def test_a_network_failure_is_retried_and_the_retry_passes(
    store: Store, seaweedfs: SeaweedFS, tmp_path: Path, dataset: str
) -> None:
    """The store's endpoint is down on the first attempt (a proxy whose upstream refuses connections) and
    back for the retry: the task's own retry condition says "retry", and the retry pulls the version."""
    files = {"a.csv": b"x,1\n", "b/c.csv": b"y,2\n"}
    store.commit(dataset, write_tree(tmp_path / "src", files))
    verdicts: list[tuple[str, bool]] = []
    condition = pull_dataset.retry_condition_fn
    assert condition is not None
    with CountingProxy(free_port()) as proxy:  # nothing listens upstream yet: every connection is dropped
        flaky = Store(
            store.url, cache_dir=tmp_path / "c2", **{**seaweedfs.store_options(), "endpoint_url": proxy.endpoint}
        )

        def then_the_server_is_back(task: Any, task_run: Any, state: Any) -> bool:
            verdict = bool(condition(task, task_run, state))
            verdicts.append((type(state.data).__name__, verdict))
            proxy.upstream = ("127.0.0.1", seaweedfs.s3_port)
            return verdict

        @flow
        def run() -> Outcome:
            task = pull_dataset.with_options(retry_delay_seconds=0, retry_condition_fn=then_the_server_is_back)
            return _outcome(task(f"{dataset}@1", tmp_path / "out", store=flaky, return_state=True))

        outcome = run()
    assert outcome.completed, outcome.value
    assert verdicts == [("GitfreeError", True)]
    assert _task_run(outcome).run_count == 2
    assert read_tree(tmp_path / "out") == files


# ------------------------------------------------------------------------------ Version.created


def test_the_commit_task_says_created_and_unchanged_from_the_version(
    store: Store, tmp_path: Path, dataset: str
) -> None:
    src = write_tree(tmp_path / "src", {"a.csv": b"x,1\n"})

    @flow
    def ingest() -> Outcome:
        return _outcome(commit_dataset(dataset, src, store=store, return_state=True))

    first = ingest()
    made = first.value
    assert (made.number, made.created) == (1, True)
    assert any(f"committed {dataset}@1" in m for m in wait_for(lambda: _logs(first) or None))

    again = ingest()
    same = again.value
    assert (same.number, same.created) == (1, False)
    said = wait_for(lambda: [m for m in _logs(again) if "unchanged" in m] or None)
    assert said == [f"{dataset} is unchanged since {dataset}@1: no new version, no artifact, no event"]
    time.sleep(2)
    assert len(committed_events(dataset)) == 1


def test_a_retry_after_a_crash_before_publishing_publishes_once(
    store: Store, tmp_path: Path, dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt commits the version completely (record and latest.json), then dies before its
    artifact and event. The retry finds the data unchanged since that very version (``Store.commit``
    says ``created=False``: that call wrote nothing); the task knows its own commit id, so the version
    is its task run's: it publishes it once, and its result says ``created``."""
    crashes: list[str] = []
    publish = _runtime.publish

    def crash_once(target: Store, version: Any) -> None:
        if not crashes:
            crashes.append(version.ref)
            raise RuntimeError("worker lost after the commit, before the event")
        publish(target, version)

    monkeypatch.setattr(_runtime, "publish", crash_once)
    src = write_tree(tmp_path / "src", {"a": b"1"})

    @flow
    def ingest() -> Outcome:
        task = commit_dataset.with_options(retries=2, retry_delay_seconds=0)
        return _outcome(task(dataset, src, store=store, return_state=True))

    outcome = ingest()
    version = outcome.value
    assert crashes == [f"{dataset}@1"]
    assert (version.number, version.created) == (1, True)
    assert _task_run(outcome).run_count == 2
    assert [v.number for v in store.log(dataset)] == [1]
    events = wait_for(lambda: committed_events(dataset))
    time.sleep(2)
    assert len(committed_events(dataset)) == len(events) == 1


def test_is_transient_on_real_failures(store: Store, seaweedfs: SeaweedFS, tmp_path: Path, dataset: str) -> None:
    """The shared predicate on errors real stores raise (no Prefect involved)."""
    from gitfree.versioning import is_transient

    def error_of(call: Callable[[], object]) -> BaseException:
        try:
            call()
        except Exception as exc:
            return exc
        raise AssertionError("no error")

    options = seaweedfs.store_options()
    down = Store(store.url, cache_dir=tmp_path / "c1", **{**options, "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    denied = Store(store.url, cache_dir=tmp_path / "c2", **{**options, "secret_access_key": "wr0ng"})
    unreachable = error_of(lambda: down.show(f"{dataset}@1"))
    assert isinstance(unreachable, ConfigError)
    assert is_transient(unreachable)  # the network may come back
    assert not is_transient(error_of(lambda: denied.show(f"{dataset}@1")))  # ConfigError: credentials
    assert not is_transient(error_of(lambda: store.show(f"{dataset}@1")))  # NotFoundError
    assert not is_transient(error_of(lambda: store.commit(dataset, tmp_path / "nowhere")))  # InputError
    assert is_transient(RuntimeError("a worker lost"))  # not gitfree's: as likely to pass as not
