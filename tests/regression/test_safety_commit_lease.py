"""Safety check: a commit whose lease lapsed writes no version record.

A garbage collection judges a lease dead once it has expired (plus the allowed clock skew), stops
protecting what it names and removes it. A writer that was stalled past that point cannot know what
GC did meanwhile, so it must not create its record: ``Store.commit`` re-checks its lease after the
upload and raises ``ConflictError`` if it lapsed. Without that check the stalled writer below
commits a version under a lease GC had already removed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import ConflictError, Store
from gitfree.testing import Call, Clock, Faults
from gitfree.versioning import layout
from gitfree.versioning.config import StoreSettings
from gitfree.versioning.models import GcReport

TTL = 60.0


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_commit_whose_lease_lapsed_and_was_removed_by_gc_writes_no_record(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Fault injected in the client: the writer's process stalls right after its lease is written (as a
    suspended VM or a long stop-the-world pause would); no server can make a client stall. While it stalls
    its lease expires and a garbage collection on another worker judges it dead and removes it. The stall
    is the clock moving past the lease's expiry (``Clock``), so nothing waits for it."""
    writer = make_store(kind, settings=StoreSettings(lease_ttl=TTL, clock_skew=0, gc_wait=5))
    other = make_store(kind, settings=StoreSettings(clock_skew=0, gc_wait=5))
    first = other.commit("ds", write_tree(tmp_path / "v1", {"a": b"version one"}))
    mine = {"a": b"version one", "b": b"the stalled writer's new file"}

    gcs: list[GcReport] = []

    def stall(_: Call) -> None:
        clock.advance(TTL * 1.5)  # past expiry; clock_skew is 0, so the lease is now dead to anyone
        gcs.append(other.gc(grace=timedelta(0)))

    commit_id = uuid.uuid4()
    with Clock() as clock, Faults(writer) as faults:
        faults.call("create", layout.LEASES, stall, when="after", times=1)
        with pytest.raises(ConflictError, match="lease"):
            writer.commit("ds", write_tree(tmp_path / "mine", mine), commit_id=commit_id)

    assert gcs and gcs[0].leases_removed == 1, "the GC during the stall did not judge the lease dead"
    reader = make_store(kind)
    assert [v.number for v in reader.log("ds")] == [1], "a version was committed under a lapsed lease"
    assert reader.show("ds").id == first.id
    assert all(v.id != commit_id for v in reader.log("ds"))
    assert not list(reader.backend.list(layout.LEASES)), "the failed commit left its lease behind"

    # Retrying is safe and gives the next number.
    retried = writer.commit("ds", tmp_path / "mine", commit_id=commit_id)
    assert retried.number == 2 and retried.id == commit_id
    assert read_tree(reader.pull("ds@2", tmp_path / "out")) == mine
    check = reader.fsck(deep=True)
    assert check.ok, check.problems
