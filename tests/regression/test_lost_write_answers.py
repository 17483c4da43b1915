"""A write whose answer is lost (a timeout, a 5xx: ``OutcomeUnknown``) escaped as a bare internal exception.

The reader of the design found, at the places that did not catch it: the upload journal's PUT (the CLI
printed ``unexpected OutcomeUnknown``, exit 1), the journal's DELETE *after* the record was written (the
commit reported a failure for a version it had committed), the lease's create-only write (the commit
failed and its lease, which may well have been written, was never released: a garbage collection then
waited for it until it expired), and the GC lock's "released meanwhile" branch (a ``KeyExists`` escaped).
A real server cannot be told to lose one answer, so these faults are injected into the backend's calls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import read_tree, write_tree

from gitfree import ConflictError, GitfreeError, Store
from gitfree.versioning import is_transient, layout
from gitfree.versioning.backends import KeyExists, OutcomeUnknown


def _lose_answer(store: Store, monkeypatch: pytest.MonkeyPatch, method: str, prefix: str, *, done: bool) -> list[str]:
    """Make ``store.backend.<method>`` lose its answer (once) for a key under ``prefix``: after doing
    the write when ``done``, else before. Returns the keys it was lost for."""
    real = getattr(store.backend, method)
    lost: list[str] = []

    def flaky(key: str, *args: Any) -> Any:
        if key.startswith(prefix) and not lost:
            lost.append(key)
            if done:
                real(key, *args)
            raise OutcomeUnknown(key)
        return real(key, *args)

    monkeypatch.setattr(store.backend, method, flaky)
    return lost


def test_a_lost_answer_to_the_journal_put_is_a_clear_transient_error(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store("s3")
    lost = _lose_answer(store, monkeypatch, "put", layout.UPLOADS, done=False)
    with pytest.raises(GitfreeError) as caught:
        store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost, "the fault was not injected"
    assert is_transient(caught.value)
    assert "uploads/" in str(caught.value) and "retry" in str(caught.value)
    assert not list(store.backend.list(layout.LEASES)), "the commit's lease was left behind"
    monkeypatch.undo()
    assert store.commit("ds", tmp_path / "src").number == 1  # the retry works


def test_a_lost_answer_to_the_journal_delete_still_reports_the_committed_version(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store("s3")
    lost = _lose_answer(store, monkeypatch, "delete", layout.UPLOADS, done=False)
    version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost, "the fault was not injected"
    assert version.created and version.number == 1
    assert store.show("ds") == version
    assert read_tree(store.pull("ds", tmp_path / "out")) == {"a": b"1"}


@pytest.mark.parametrize("done", [True, False], ids=["written", "not-written"])
def test_a_lost_answer_to_the_lease_write_leaves_no_lease(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, done: bool
) -> None:
    store = make_store("s3")
    lost = _lose_answer(store, monkeypatch, "create", layout.LEASES, done=done)
    version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost, "the fault was not injected"
    assert version.created and version.number == 1
    assert not list(store.backend.list(layout.LEASES)), "a lease was left behind"


def test_a_gc_lock_taken_in_the_gap_is_a_conflict(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our create finds a lock, the lock is gone when we read it, and another GC takes it before our second
    create: the GC says another one runs (``ConflictError``), not ``KeyExists``."""
    store = make_store("s3")
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    real_create, real_get = store.backend.create, store.backend.get
    calls: list[str] = []

    def create(key: str, data: bytes) -> str:
        if key == layout.GC_LOCK:
            calls.append("create")
            raise KeyExists(key)
        return real_create(key, data)

    def get(key: str) -> Any:
        if key == layout.GC_LOCK and calls == ["create"]:
            calls.append("gone")
            from gitfree.versioning.backends import KeyMissing

            raise KeyMissing(key)
        return real_get(key)

    monkeypatch.setattr(store.backend, "create", create)
    monkeypatch.setattr(store.backend, "get", get)
    with pytest.raises(ConflictError, match="another garbage collection"):
        store.gc(keep_last=1)
    assert calls == ["create", "gone", "create"]
