"""Safety check: a lease or lock holder notices, at its next renewal, that its record was taken over
or removed, and stops acting on it.

``Holder.renew`` swaps the record with ``If-Match``; when the swap fails because someone replaced or
deleted the record (they judged it dead), the holder is *lost*: ``valid()`` turns false, so a commit
writes no record and a garbage collection deletes nothing more, and ``release()`` leaves the new
holder's record alone.

Two holders on one clock never take each other's live record over (a record is dead only
``clock_skew`` after it expired), so the takeovers below are done by the test with the record's
current ETag, exactly as a process whose clock runs ahead by more than the allowed skew would do it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import read_tree, write_tree

from gitfree import ConflictError, Store
from gitfree.testing import Call, Faults
from gitfree.versioning import layout, leases
from gitfree.versioning.backends import KeyMissing, PreconditionFailed
from gitfree.versioning.config import StoreSettings

OBJECTS = "files/md5/"
"""DVC's object layout: GC scans it after it has decided what to drop, before it changes anything."""


HEARTBEAT_SETTLES = 0.3
"""The Faults rule sees the store refuse a heartbeat's swap just before the heartbeat thread, a few lines
later, marks its holder lost; the held work is let go this long after, well within the TTL (once it ran
on at once and the GC, not yet told, dropped versions: the test failed, never the other way round)."""


def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("how", ["taken_over", "removed"])
def test_a_holder_whose_record_was_taken_over_or_removed_is_lost(store: Store, how: str) -> None:
    holder = leases.Holder.new(store.backend, timedelta(minutes=10), dataset="ds", pointer="0" * 32)
    holder.create()
    thief: leases.Holder | None = None
    try:
        assert holder.renew() and holder.valid(margin=timedelta(minutes=5))
        _, etag = store.backend.get(holder.key)
        if how == "taken_over":
            thief = leases.Holder.new(store.backend, timedelta(minutes=10), key=holder.key, dataset="ds")
            thief.take_over(etag)
        else:
            store.backend.delete(holder.key)
        assert holder.renew() is False, "renewal did not notice the record was no longer ours"
        assert not holder.valid(margin=timedelta(0)), "a lost holder still believes it holds the record"
        assert holder.renew() is False  # and it stays lost: it does not take the record back
    finally:
        holder.release()
    if thief is not None:
        found = leases.read(store.backend, holder.key)
        assert found is not None and found[0].id == thief.lease.id, "release() removed the new holder's record"
        thief.release()
    assert not store.backend.exists(holder.key), "the lost holder wrote its record again"


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_commit_whose_lease_was_removed_while_it_ran_writes_no_record(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Injected: right after the writer's lease is written (and its heartbeat started), the lease record is
    deleted, as a garbage collection whose clock runs ahead would remove a lease it judged dead; the
    writer then stalls until its next heartbeat has failed, well within its own TTL, so only the failed
    renewal can tell it that it lost the lease. The heartbeat's swap is watched where the store refuses
    it: ``Holder.renew`` marks the holder lost a few statements later, while the writer goes on with
    requests before it checks its lease (were it not marked by then, this test would fail, not pass)."""
    ttl = 3.0
    writer = make_store(kind, settings=StoreSettings(lease_ttl=ttl, gc_wait=5))
    writer.commit("ds", write_tree(tmp_path / "v1", {"a": b"one"}))
    refused = threading.Event()
    removed: list[str] = []

    def watch(call: Call) -> None:
        if call.key in removed and isinstance(call.error, PreconditionFailed):
            refused.set()

    def remove_lease_then_stall(_: Call) -> None:
        (lease_key,) = list(writer.backend.list(layout.LEASES))
        writer.backend.delete(lease_key)
        removed.append(lease_key)
        assert refused.wait(ttl), "the heartbeat did not try to renew the removed lease"
        time.sleep(HEARTBEAT_SETTLES)

    with Faults(writer) as faults:
        faults.call("replace", layout.LEASES, watch, when="after")  # the heartbeat
        # The writer looks for GC right after writing its lease.
        faults.call("get", layout.GC_LOCK, remove_lease_then_stall, times=1)
        with pytest.raises(ConflictError):
            writer.commit("ds", write_tree(tmp_path / "v2", {"a": b"two"}))
    assert removed and refused.is_set()
    reader = make_store(kind)
    assert [v.number for v in reader.log("ds")] == [1], "a version was committed by a writer that lost its lease"
    assert writer.commit("ds", tmp_path / "v2").number == 2  # a retry is fine
    assert read_tree(reader.pull("ds", tmp_path / "out")) == {"a": b"two"}


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_gc_whose_lock_was_taken_over_deletes_nothing_more(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Injected: while GC is held after choosing what to drop (and before deleting anything), the lock is
    taken over with its current ETag, as a second GC whose clock runs ahead would take over a lock it
    judged dead. GC is let go once its heartbeat has been refused, well within its TTL (the refusal is
    watched where the store answers it, as above)."""
    ttl = 3.0
    collector = make_store(kind, settings=StoreSettings(lease_ttl=ttl, gc_wait=5))
    for i in range(1, 4):
        collector.commit("ds", write_tree(tmp_path / f"v{i}", {"f": f"version {i}".encode()}))
    objects_before = set(collector.backend.list(OBJECTS))
    refused = threading.Event()

    def watch(call: Call) -> None:
        if isinstance(call.error, PreconditionFailed):
            refused.set()

    with Faults(collector) as faults:
        held = faults.pause("scan", OBJECTS)
        faults.call("replace", layout.GC_LOCK, watch, when="after")  # the GC's heartbeat
        gc, out = _in_thread(collector.gc, keep_last=1, grace=timedelta(0))
        assert held.reached.wait(60), out

        other = make_store(kind)
        try:
            _, etag = other.backend.get(layout.GC_LOCK)
        except KeyMissing:
            pytest.fail("the held GC has no lock")
        thief = leases.Holder.new(other.backend, timedelta(minutes=10), key=layout.GC_LOCK, kind="gc")
        thief.take_over(etag)
        try:
            assert refused.wait(ttl), "the GC's heartbeat did not run into the takeover"
            time.sleep(HEARTBEAT_SETTLES)
            held.resume.set()
            gc.join(60)
            assert not gc.is_alive()
            assert isinstance(out.get("error"), ConflictError), f"a GC that lost its lock went on: {out}"
            reader = make_store(kind)
            assert [v.number for v in reader.log("ds")] == [3, 2, 1], "the GC dropped versions after losing its lock"
            assert set(reader.backend.list(OBJECTS)) == objects_before, "the GC deleted objects after losing its lock"
            found = leases.read(reader.backend, layout.GC_LOCK)
            assert found is not None and found[0].id == thief.lease.id, "the GC removed the lock it had lost"
        finally:
            held.resume.set()
            thief.release()
    check = make_store(kind).fsck(deep=True)
    assert check.ok, check.problems
    assert make_store(kind).gc(keep_last=1, grace=timedelta(0)).versions_deleted == ["ds@1", "ds@2"]
