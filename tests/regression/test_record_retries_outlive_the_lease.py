"""Commit step 8 retries the record create while its lease lapses: the record then names objects GC deleted.

Commit step 7 checks the lease once, after the upload. Step 8 (create_version) then retries the create-only
write of versions/N.json for up to GITFREE_COMMIT_ATTEMPTS attempts; each unknown outcome with nothing there
is retried on the same number after a jitter of up to 2 s, each attempt against a sick server taking up to
3 x read timeout. Against a proxy that never answered record PUTs, a CLI commit retried for 668 s, longer than
the 600 s lease TTL (docs: "a commit whose lease is not valid writes no record", I1/I3). Nothing re-checks the
lease between attempts: if the lease lapses meanwhile and a GC on another worker judges it dead, GC deletes the
objects the commit uploaded (its journal names them, no record does), and the next attempt that lands creates
a version record naming deleted objects. The commit reports success; fsck finds missing objects.

Here the stall is the clock moving past the lease's expiry during the first (lost, not landed) record write,
as in test_safety_commit_lease.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import ConflictError, Store
from gitfree.testing import Call, Clock, Faults, OutcomeUnknown
from gitfree.versioning.config import StoreSettings
from gitfree.versioning.models import GcReport

TTL = 60.0


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_record_write_retried_past_the_lease_never_names_deleted_objects(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    writer = make_store(kind, settings=StoreSettings(lease_ttl=TTL, clock_skew=0, gc_wait=5))
    other = make_store(kind, settings=StoreSettings(clock_skew=0, gc_wait=5))
    other.commit("ds", write_tree(tmp_path / "v1", {"a": b"version one"}))
    mine = write_tree(tmp_path / "mine", {"a": b"version one", "b": b"the slow writer's new file"})

    gcs: list[GcReport] = []

    def stall(_: Call) -> None:  # the server sits on the record PUT past the lease's expiry
        clock.advance(TTL * 1.5)
        gcs.append(other.gc(grace=timedelta(0)))

    versions = re.compile(r"/versions/")
    with Clock() as clock, Faults(writer) as faults:
        faults.call("create", versions, stall, times=1)
        faults.fail("create", versions, error=OutcomeUnknown, times=1)  # timed out; it did not land
        try:
            version = writer.commit("ds", mine)
        except ConflictError:
            version = None  # the right outcome: the lease lapsed, nothing committed

    assert gcs and gcs[0].leases_removed == 1, "the GC during the stall did not judge the lease dead"
    reader = make_store(kind)
    check = reader.fsck()
    assert check.ok, (
        f"commit returned {version and version.ref} under a lease GC had removed; its objects are gone: "
        f"{[(p.kind, p.key) for p in check.problems]}"
    )
