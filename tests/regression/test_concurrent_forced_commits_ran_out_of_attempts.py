"""Concurrent forced commits (issue: 8 processes committing ``force=True`` to one dataset on a ``file://`` store
ended with "could not commit ... after 100 attempts: other writers kept taking the next version number").

A writer that lost its number walked the numbers one at a time (a create and a read each, every one an
attempt) while the winners started from the head, so a writer behind by k numbers spent k attempts and a
slow one ran out. Now it probes ahead for the first free number (after one seen taken) and tries that.
The invariant, checked by reading every record back: every writer succeeds, no two are told the same
number, every number told is a record of that writer's commit, and the numbers have no gaps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import Store, Version
from gitfree.testing import Call, Faults, SeaweedFS
from gitfree.versioning import layout
from gitfree.versioning.config import StoreSettings

WORKER = """
import json, sys, uuid
from pathlib import Path
from gitfree import Store, Version
url, cache, src, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
options = json.loads(sys.argv[5])
store = Store(url, cache_dir=cache, **options)
src.mkdir(parents=True)
(src / "f").write_bytes(b"the same data for everyone")
for _ in range(count):
    commit_id = uuid.uuid4()
    version = store.commit("ds", src, force=True, commit_id=commit_id)
    print(json.dumps([version.number, str(commit_id), version.md5]), flush=True)
"""


def _dirs(tmp_path: Path, writer: int) -> tuple[str, str]:
    """A writer's own cache and source directory."""
    return str(tmp_path / f"c{writer}"), str(tmp_path / f"s{writer}")


def _race(url: str, tmp_path: Path, writers: int, count: int, options: dict[str, str]) -> list[list[object]]:
    env = {**os.environ, "HOME": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, *_dirs(tmp_path, w), str(count), json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(writers)
    ]
    told = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.strip().splitlines()[-1:]
        told += [json.loads(line) for line in out.splitlines()]
    assert len(told) == writers * count
    return told


def _check(store: Store, told: list[list[object]]) -> None:
    numbers = [n for n, _, _ in told]
    assert len(set(numbers)) == len(numbers), "two writers were told the same number"
    for number, commit_id, md5 in told:
        record = store.catalog.version("ds", int(str(number)))
        assert (str(record.id), record.md5) == (commit_id, md5)
    assert store.catalog.numbers("ds") == list(range(1, len(told) + 1))


def test_sixteen_forced_writers_on_a_file_store_all_commit(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    told = _race(url, tmp_path, writers=16, count=50, options={})
    _check(Store(url, cache_dir=tmp_path / "check"), told)


def test_eight_forced_writers_on_seaweedfs_all_commit(s3_store: Store, seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    told = _race(s3_store.url, tmp_path, writers=8, count=20, options=seaweedfs.store_options())
    _check(s3_store, told)


def _fall_behind(
    make_store: Callable[..., Store], kind: str, tmp_path: Path, rival_data: list[bytes], mine: bytes, force: bool
) -> tuple[Store, Version]:
    """A writer allowed 2 attempts commits ``mine``; just before its first create, a rival commits
    ``rival_data`` (after ``ds@1``), so the writer falls ``len(rival_data)`` numbers behind at once."""
    writer = make_store(kind, settings=StoreSettings(commit_attempts=2))
    rival = make_store(kind)
    rival.commit("ds", write_tree(tmp_path / "r0", {"f": b"rival 0"}))

    def rival_first(_: Call) -> None:
        for n, data in enumerate(rival_data, 1):
            rival.commit("ds", write_tree(tmp_path / f"r{n}", {"f": data}))

    with Faults(writer) as faults:
        faults.call("create", lambda key: layout.parse_version_key(key) is not None, rival_first, times=1)
        version = writer.commit("ds", write_tree(tmp_path / "mine", {"f": mine}), force=force)
    return make_store(kind), version


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_writer_thirty_numbers_behind_needs_one_more_attempt(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """The old walk spent one attempt per number taken and gave up after 2 here; the catch-up lands at once,
    right after the newest (no gap)."""
    rivals = [f"rival {n}".encode() for n in range(1, 31)]
    reader, version = _fall_behind(make_store, kind, tmp_path, rivals, b"rival 0", force=True)
    assert (version.number, version.created) == (32, True)
    assert reader.catalog.numbers("ds") == list(range(1, 33))
    assert reader.show("ds").id == version.id


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_writer_behind_finds_its_version_made_by_another(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Without ``force``, a rival's newest version of the same data is the writer's version (as when it
    holds the number the writer lost): nothing is written."""
    rivals = [f"rival {n}".encode() for n in range(1, 30)] + [b"mine"]
    reader, version = _fall_behind(make_store, kind, tmp_path, rivals, b"mine", force=False)
    assert (version.number, version.created) == (31, False)
    assert reader.catalog.numbers("ds") == list(range(1, 32))
