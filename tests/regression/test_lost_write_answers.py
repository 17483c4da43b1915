"""A write whose answer is lost (a timeout, a 5xx: ``OutcomeUnknown``) escaped as a bare internal exception.

The reader of the design found, at the places that did not catch it: the upload journal's PUT (the CLI
printed ``unexpected OutcomeUnknown``, exit 1), the journal's DELETE *after* the record was written (the
commit reported a failure for a version it had committed), the lease's create-only write (the commit
failed and its lease, which may well have been written, was never released: a garbage collection then
waited for it until it expired), and the GC lock's "released meanwhile" branch (a ``KeyExists`` escaped).
A real server cannot be told to lose one answer, so these faults are injected into the backend's calls
(``gitfree.testing.Faults``), on S3 and on the file backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import ConflictError, GitfreeError, Store
from gitfree.testing import Faults
from gitfree.versioning import is_transient, layout
from gitfree.versioning.backends import KeyExists, KeyMissing, OutcomeUnknown

KINDS = pytest.mark.parametrize("kind", ["s3", "file"])


def _lose_answer(faults: Faults, op: str, prefix: str, *, done: bool) -> list[str]:
    """Make the store's ``op`` lose its answer (once) for a key under ``prefix``: after doing the write
    when ``done``, else before. Returns the keys it was lost for."""
    if done:
        return faults.lose(op, prefix).fired
    return faults.fail(op, prefix, error=OutcomeUnknown).fired


@KINDS
def test_a_lost_answer_to_the_journal_put_is_a_clear_transient_error(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    store = make_store(kind)
    with Faults(store) as faults:
        lost = _lose_answer(faults, "put", layout.UPLOADS, done=False)
        with pytest.raises(GitfreeError) as caught:
            store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost, "the fault was not injected"
    assert is_transient(caught.value)
    assert "uploads/" in str(caught.value) and "retry" in str(caught.value)
    assert not list(store.backend.list(layout.LEASES)), "the commit's lease was left behind"
    assert store.commit("ds", tmp_path / "src").number == 1  # the retry works


@KINDS
def test_a_lost_answer_to_the_journal_delete_still_reports_the_committed_version(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    store = make_store(kind)
    with Faults(store) as faults:
        lost = _lose_answer(faults, "delete", layout.UPLOADS, done=False)
        version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost, "the fault was not injected"
    assert version.created and version.number == 1
    assert store.show("ds") == version
    assert read_tree(store.pull("ds", tmp_path / "out")) == {"a": b"1"}


@KINDS
@pytest.mark.parametrize("done", [True, False], ids=["written", "not-written"])
def test_a_lost_answer_to_the_lease_write_leaves_no_lease(
    make_store: Callable[..., Store], tmp_path: Path, done: bool, kind: str
) -> None:
    store = make_store(kind)
    with Faults(store) as faults:
        lost = _lose_answer(faults, "create", layout.LEASES, done=done)
        version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost, "the fault was not injected"
    assert version.created and version.number == 1
    assert not list(store.backend.list(layout.LEASES)), "a lease was left behind"


@KINDS
def test_a_gc_lock_taken_in_the_gap_is_a_conflict(make_store: Callable[..., Store], tmp_path: Path, kind: str) -> None:
    """Our create finds a lock, the lock is gone when we read it, and another GC takes it before our second
    create: the GC says another one runs (``ConflictError``), not ``KeyExists``."""
    store = make_store(kind)
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    with Faults(store) as faults:
        faults.fail("create", layout.GC_LOCK, error=KeyExists, times=None)
        faults.fail("get", layout.GC_LOCK, error=KeyMissing)
        with pytest.raises(ConflictError, match="another garbage collection"):
            store.gc(keep_last=1)
    assert [c.op for c in faults.fired] == ["create", "get", "create"]  # found, gone, taken by another
