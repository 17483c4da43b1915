# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""A commit killed (kill -9) after its record and before its edges, retried with the same commit_id (what the
Prefect and Airflow integrations do on a task retry): step 3 returns the head with created=True and returns
before step 11, so the edge is never written; fsck stays red until someone runs reindex."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from gitfree import Store

CHILD = r"""
import os, re, sys, uuid
from gitfree import Store
from gitfree.faults import Faults
store = Store(sys.argv[1], cache_dir=sys.argv[2])
with Faults(store) as faults:
    faults.call("create", re.compile(r"/used-by/"), lambda *a, **k: os.kill(os.getpid(), 9))
    store.commit("model", sys.argv[3], inputs=["raw@1"], commit_id=uuid.UUID(sys.argv[4]))
"""


def test_a_retry_of_a_killed_commit_writes_its_edges(
    make_store: Callable[..., Store], src: Callable[[str], Path], tmp_path: Path
) -> None:
    store = make_store("file")
    store.commit("raw", src("r"))
    data, commit_id = src("m"), uuid.uuid4()
    killed = subprocess.run(
        [sys.executable, "-c", CHILD, str(store.backend.root), str(tmp_path / "c1"), str(data), str(commit_id)],
        env=os.environ,
    )
    assert killed.returncode == -9
    retried = make_store("file").commit("model", data, inputs=["raw@1"], commit_id=commit_id)
    assert retried.ref == "model@1" and retried.created
    assert "model@1" in {n.id for n in store.lineage("raw@1", "down").nodes}
    assert store.fsck().ok, [(p.kind, p.key) for p in store.fsck().problems]
