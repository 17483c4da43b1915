"""Safety check: ``latest.json`` is only a hint, and a hint that cannot be moved harms nobody.

A commit moves ``latest.json`` forward with ``If-Match``; when it keeps losing that swap it gives up
after a bounded number of tries, logs a warning and still returns its version, which readers find
by probing past the hint. Garbage collection must not leave the hint pointing at a version it drops
(readers would stop there, and a writer would take its number again): when it cannot move the hint
it drops nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import ConflictError, Store
from gitfree.testing import Faults
from gitfree.versioning import layout
from gitfree.versioning.backends import PreconditionFailed

REFUSALS = 60
"""How many swaps of latest.json are refused: far more than a writer should spend on a hint, so a
writer without a bound gets through on try ``REFUSALS + 1`` (and the test notices) instead of spinning."""


def _refuse_latest_swaps(faults: Faults, dataset: str) -> list[str]:
    """Make the next ``REFUSALS`` conditional replaces of ``dataset``'s latest.json fail with 412, as if
    other writers kept moving it. Returns the list of refusals."""
    return faults.fail("replace", layout.latest_key(dataset), error=PreconditionFailed, times=REFUSALS).fired


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_commit_that_cannot_move_latest_gives_up_and_readers_still_find_it(
    make_store: Callable[..., Store],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """Fault injected in the client: the If-Match swaps of latest.json answer 412 (the first ``REFUSALS``
    tries). A real server only does that under a storm of concurrent writers."""
    writer = make_store(kind)
    writer.commit("ds", write_tree(tmp_path / "v1", {"f": b"one"}))
    two = {"f": b"two", "g": b"new in two"}
    with Faults(writer) as faults, caplog.at_level(logging.WARNING, logger="gitfree"):
        refused = _refuse_latest_swaps(faults, "ds")
        version = writer.commit("ds", write_tree(tmp_path / "v2", two))

    assert version.number == 2 and version.created
    assert refused, "the commit never tried to move latest.json"
    assert len(refused) < REFUSALS, (
        f"the commit kept trying to move the hint ({len(refused)} tries) instead of giving up"
    )
    assert any("latest" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING), (
        "giving up on latest.json was not reported"
    )

    reader = make_store(kind)
    assert reader.show("ds").id == version.id, "readers did not probe past the stale hint"
    assert [v.number for v in reader.log("ds")] == [2, 1]
    assert read_tree(reader.pull("ds", tmp_path / "out")) == two
    check = reader.fsck()
    assert check.ok, check.problems  # a hint that is behind is not a problem
    assert reader.commit("ds", write_tree(tmp_path / "v3", {"f": b"three"})).number == 3


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_gc_that_cannot_move_a_stale_latest_past_what_it_drops_leaves_readers_right(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Fault injected in the client, as above: first the writer's swaps of latest.json fail (so the hint
    stays at version 1 while versions 2 and 3 are committed), then the swaps the GC tries fail."""
    writer = make_store(kind)
    writer.commit("ds", write_tree(tmp_path / "v1", {"f": b"one"}))
    with Faults(writer) as faults:
        _refuse_latest_swaps(faults, "ds")
        for i in (2, 3):
            writer.commit("ds", write_tree(tmp_path / f"v{i}", {"f": f"version {i}".encode()}))
    head = writer.show("ds")
    assert head.number == 3

    collector = make_store(kind)
    with Faults(collector) as faults:
        refused = _refuse_latest_swaps(faults, "ds")
        with contextlib.suppress(ConflictError):  # giving up is fine: what matters is what readers see after
            collector.gc(keep_last=1, grace=timedelta(0))
    assert refused, "GC never tried to move the stale latest.json"

    reader = make_store(kind)
    assert reader.show("ds").id == head.id, "after GC the head resolves to a version GC dropped"
    assert reader.log("ds")[0].id == head.id
    assert read_tree(reader.pull("ds@3", tmp_path / "out3")) == {"f": b"version 3"}
    check = reader.fsck()  # before any commit moves the hint again
    assert check.ok, f"GC left the store in a state fsck flags: {check.problems}"
    after = reader.commit("ds", write_tree(tmp_path / "v4", {"f": b"four"}))
    assert after.number == 4, "a writer took a number that was already used"
