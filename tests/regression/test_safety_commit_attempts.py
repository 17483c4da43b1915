"""Safety check: a commit that keeps losing the race for the next number gives up, cleanly.

``Store.commit`` tries at most ``settings.commit_attempts`` version numbers; then it raises
``ConflictError`` having created no record and left no lease, and a retry succeeds. Without the
limit a writer that keeps losing would try for ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import ConflictError, Store, Version
from gitfree.testing import Call, Faults
from gitfree.versioning import layout
from gitfree.versioning.config import StoreSettings

ATTEMPTS = 3
RIVAL_WINS = 6
"""The rival wins this many races in a row: more than ``ATTEMPTS``, so a writer without a limit gets
through on try ``RIVAL_WINS + 1`` (and the test notices) instead of looping for ever."""


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_commit_that_loses_every_attempt_gives_up_without_writing(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Timing forced in the client: just before each create of a version record by the writer, a rival
    worker commits that very number (a real commit, on the real store). A real race rarely lets one
    writer lose that many times in a row; this makes it lose every time."""
    writer = make_store(kind, settings=StoreSettings(commit_attempts=ATTEMPTS))
    rival = make_store(kind)
    rival.commit("ds", write_tree(tmp_path / "r0", {"f": b"rival 0"}))
    wins: list[Version] = []

    def rival_first(_: Call) -> None:
        n = len(wins) + 1
        wins.append(rival.commit("ds", write_tree(tmp_path / f"r{n}", {"f": f"rival {n}".encode()})))

    commit_id = uuid.uuid4()
    mine = {"f": b"the writer's data"}
    with Faults(writer) as faults:
        faults.call("create", lambda key: layout.parse_version_key(key) is not None, rival_first, times=RIVAL_WINS)
        with pytest.raises(ConflictError):
            writer.commit("ds", write_tree(tmp_path / "mine", mine), commit_id=commit_id)

    assert len(wins) == ATTEMPTS, f"the writer tried {len(wins)} numbers, not settings.commit_attempts={ATTEMPTS}"
    reader = make_store(kind)
    log = reader.log("ds")
    assert [v.number for v in log] == list(range(ATTEMPTS + 1, 0, -1))
    assert all(v.id != commit_id for v in log), "the writer created a record although it reported failure"
    assert reader.show("ds").id == wins[-1].id
    assert not list(reader.backend.list(layout.LEASES)), "the failed commit left its lease behind"

    retried = writer.commit("ds", tmp_path / "mine", commit_id=commit_id)
    assert retried.number == ATTEMPTS + 2 and retried.id == commit_id
    assert read_tree(reader.pull("ds", tmp_path / "out")) == mine
    check = reader.fsck(deep=True)
    assert check.ok, check.problems
