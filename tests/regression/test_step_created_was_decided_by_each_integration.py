"""A versioned step found up to date says ``created`` when an earlier attempt with the same commit id made it.

Regression (issue 14, "did this call create the version?" written once): ``Step.run`` returned every version
it found up to date with ``created`` false, so the Prefect step task and the Airflow step each compared
``version.id == commit_id`` again to tell a retry's own version (made by an attempt that died before
publishing its event) from another task's. ``Store.commit`` already answers that question for a commit's own
retries; a step now answers it the same way, and the integrations read ``version.created`` alone.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import Store, step


def test_a_retry_with_the_same_commit_id_is_told_it_made_the_version(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.commit("raw", write_tree(tmp_path / "raw", {"a.csv": b"1\n2\n"}))
    runs: list[int] = []

    @step(output="features", inputs={"raw": "raw@latest"}, store=store)
    def featurize(raw: Path, out: Path, window: int = 7) -> dict[str, int]:
        runs.append(window)
        (out / "f.csv").write_bytes((raw / "a.csv").read_bytes() * window)
        return {"rows": 2 * window}

    attempt = uuid.uuid4()
    first = featurize.run(commit_id=attempt)
    assert (first.ran, first.version.created, first.version.ref, runs) == (True, True, "features@1", [7])
    assert type(first.version.metrics["rows"]) is int  # a body's integer metric stays an integer

    with caplog.at_level("INFO", logger="gitfree"):
        retried = featurize.run(commit_id=attempt)  # the same task's next attempt: the note says it is done
    assert (retried.ran, retried.version.created, retried.version.id, runs) == (False, True, attempt, [7])
    assert "featurize made features@1 in an earlier attempt (raw@1, window=7)" in caplog.messages

    for other in (featurize.run(commit_id=uuid.uuid4()), featurize.run()):  # another task, or no orchestrator
        assert (other.ran, other.version.created) == (False, False)
        assert other.line == "features@1 is up to date (raw@1, window=7)"
    assert featurize(window=7).created is False and runs == [7]
