"""fsck read ``latest.json`` after its inventory: a commit landing in between (a step run, a writer) made it
report ``bad_latest`` on a healthy store, and ``--repair`` would have pointed the hint back. The record a hint
names is now read when it is past the head fsck saw."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from helpers import write_tree

from gitfree import Store
from gitfree.faults import Faults
from gitfree.versioning.models import FsckReport


def test_a_commit_between_the_inventory_and_the_hint_is_no_problem(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    writer = Store(url, cache_dir=tmp_path / "w")
    writer.commit("features", write_tree(tmp_path / "a", {"f": b"1"}))
    checker = Store(url, cache_dir=tmp_path / "f")
    reports: list[FsckReport] = []
    with Faults(checker) as faults:
        paused = faults.pause("get", re.compile(r"^datasets/features/latest\.json$"))
        fsck = threading.Thread(target=lambda: reports.append(checker.fsck(repair=True)))
        fsck.start()
        assert paused.reached.wait(30)
        writer.commit("features", write_tree(tmp_path / "b", {"f": b"2"}))
        paused.resume.set()
        fsck.join()
    assert reports[0].problems == []
    assert writer.show("features").ref == "features@2"
