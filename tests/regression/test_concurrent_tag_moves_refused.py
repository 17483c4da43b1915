"""Concurrent tag moves (issue: eight concurrent ``gitfree tag ds@N race --move`` left 2-3 of them failing
with "moved by someone else", exit 4). An unconditional move retries its swap; only ``--expect`` is CAS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from helpers import write_tree

from gitfree import Store
from gitfree.testing import SeaweedFS

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def test_eight_concurrent_moves_all_land(s3_store: Store, seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    for i in range(8):
        s3_store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": bytes([i])}))
    s3_store.tag("ds@1", "race")
    env = {**seaweedfs.env(), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for round_ in range(3):
        procs = [
            subprocess.Popen(
                [
                    GITFREE,
                    "--store",
                    s3_store.url,
                    "--cache-dir",
                    str(tmp_path / f"c{n}"),
                    "tag",
                    f"ds@{n}",
                    "race",
                    "--move",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for n in range(1, 9)
        ]
        outcomes = [(p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in procs]
        failed = [(code, text) for code, text in outcomes if code != 0]
        assert not failed, f"round {round_}: {failed}"
        assert 1 <= s3_store.show("ds@race").number <= 8


def test_a_tag_conflict_a_retry_cannot_fix_is_not_retried(store: Store, tmp_path: Path) -> None:
    """The orchestrators retry what ``is_transient`` says may pass; a tag elsewhere than ``expect`` never will."""
    import pytest

    from gitfree import ConflictError
    from gitfree.versioning import is_transient

    for i in range(2):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": bytes([i])}))
    store.tag("ds@1", "prod")
    calls: list[Callable[[], object]] = [lambda: store.tag("ds@2", "prod", expect=2), lambda: store.tag("ds@2", "prod")]
    for call in calls:
        with pytest.raises(ConflictError) as caught:
            call()
        assert not is_transient(caught.value)
