"""A commit whose read of gc/lock.json fails leaves its lease behind, renewed for as long as the process lives.

Commit step 5 (``Coordinator.commit_lease``): the lease is created (its renewal thread started), then the GC
lock is read. That read is outside the ``try``/``finally`` that releases the lease, so when it fails (a timeout,
a 5xx, a dropped connection: ``ConfigError``/``GitfreeError``) the commit raises and the lease stays: its
record remains under leases/, and its heartbeat thread keeps swapping it forward every ttl/3 while the process
runs (a Prefect or Airflow worker, a notebook). Its pointer names a listing that will never be uploaded, so
every garbage collection, on any host, waits GITFREE_GC_WAIT (30 min) for "commits still uploading" and fails
with ConflictError, over and over, until that worker process exits. A failure at the journal PUT or at the
record create releases the lease correctly; only this one step leaks it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import ConflictError, GitfreeError, Store
from gitfree.testing import Faults
from gitfree.versioning import layout
from gitfree.versioning.config import StoreSettings


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_failed_read_of_the_gc_lock_releases_the_lease(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    writer = make_store(kind, settings=StoreSettings(lease_ttl=3.0))
    writer.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    write_tree(tmp_path / "src", {"b": b"2"})
    with Faults(writer) as faults:
        faults.fail("get", layout.GC_LOCK, times=1)
        with pytest.raises(GitfreeError):
            writer.commit("ds", tmp_path / "src")
    time.sleep(4)  # longer than the lease's TTL: an abandoned lease would have expired by now
    left = list(writer.backend.list(layout.LEASES))
    collector = make_store(kind, settings=StoreSettings(gc_wait=3.0, clock_skew=0))
    try:
        collector.gc()
    except ConflictError as exc:
        pytest.fail(f"gc blocked by the lease the failed commit left ({left}): {exc}")
    assert left == [], f"the failed commit left its lease: {left}"
