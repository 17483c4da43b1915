"""Safety check: leases of commits that died are found and cleaned up, and live ones are left alone.

A commit that crashes leaves its lease behind. ``fsck`` counts such stale leases
(``report.stale_leases``); garbage collection removes them (``report.leases_removed``) but never a
live one, which keeps protecting what it names; a dry run removes nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.versioning import layout, leases
from gitfree.versioning.config import StoreSettings


def _left_behind(store: Store, ttl: timedelta, pid: int | None = None, **fields: object) -> leases.Holder:
    """The lease record a commit leaves when it dies right after writing it: written once, never renewed
    (no heartbeat is started) and never removed. ``pid``: the process that held it (default: this one)."""
    holder = leases.Holder.new(store.backend, ttl, **fields)  # type: ignore[arg-type]
    if pid is not None:
        holder.lease = holder.lease.model_copy(update={"pid": pid})
    store.backend.create(holder.key, holder.lease.model_dump_json().encode())
    return holder


def _exited_pid() -> int:
    """The pid of a process of this machine that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_dead_leases_are_counted_by_fsck_and_removed_by_gc_but_live_ones_stay(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """No fault injected: the leases of two dead commits are written as such a commit leaves them — one
    whose heartbeat stopped (it expires; clock_skew is 0 so it is dead once expired), one of a process of
    this machine that has exited (dead at once, as restic judges its stale locks)."""
    if leases.node_id() is None:
        pytest.skip("no kernel boot id / pid namespace here, so a lease cannot be judged by its process")
    store = make_store(kind, settings=StoreSettings(clock_skew=0, gc_wait=5))
    kept = {"a": b"kept by the live lease", "b": b"and this"}
    first = store.commit("ds", write_tree(tmp_path / "v1", kept))
    store.commit("ds", write_tree(tmp_path / "v2", {"c": b"the head"}))

    expired = _left_behind(store, timedelta(seconds=0.2), dataset="ds", pointer=first.md5)
    crashed = _left_behind(store, timedelta(minutes=10), pid=_exited_pid(), dataset="ds", pointer=first.md5)
    live = leases.Holder.new(store.backend, timedelta(minutes=10), dataset="ds", pointer=first.md5)
    live.create()  # a commit in flight in this very process: its heartbeat runs
    try:
        time.sleep(0.3)  # the first lease expires
        report = store.fsck()
        assert report.stale_leases == 2, f"fsck counted {report.stale_leases} stale leases, not the 2 dead ones"
        assert report.ok  # stale leases are not damage

        dry = store.gc(keep_last=1, grace=timedelta(0), dry_run=True)
        assert dry.leases_removed == 0
        assert all(store.backend.exists(h.key) for h in (expired, crashed, live)), "a dry run removed a lease"

        gc = store.gc(keep_last=1, grace=timedelta(0))
        assert (gc.leases_removed, gc.leases_live) == (2, 1), f"removed {gc.leases_removed}, live {gc.leases_live}"
        assert not store.backend.exists(expired.key), "GC left the expired lease behind"
        assert not store.backend.exists(crashed.key), "GC left the lease of the exited process behind"
        assert store.backend.exists(live.key), "GC removed a live lease"
        assert live.renew() and live.valid(margin=timedelta(minutes=1)), "the live holder lost its lease"
        assert gc.versions_deleted == ["ds@1"]

        # What the live lease names survived GC, though the only version naming it was dropped.
        assert store.fsck().stale_leases == 0
        present = set(store.backend.list("files/md5/"))
        assert layout.object_key(first.md5) in present
        assert {layout.object_key(e.md5) for e in store.files(first)} <= present
    finally:
        live.release()
    assert not store.backend.exists(live.key)
    assert store.gc(grace=timedelta(0)).leases_removed == 0
    assert read_tree(store.pull("ds", tmp_path / "out")) == {"c": b"the head"}
