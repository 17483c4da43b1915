"""A lease or GC lock written by a newer gitfree (``"format": 2``) was judged expired.

Records of a newer format are refused with "upgrade gitfree", but a lease that did not parse was taken
for one "cut short" and treated as long dead: a GC took over a newer GC's live lock (two collections at
once), and removed a newer writer's live commit lease as stale. Now a lease of a newer format stops
the operation with one line saying to upgrade, and the record is left as it is.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import IntegrityError, Store
from gitfree.versioning import layout
from gitfree.versioning.models import utcnow


def _newer(kind: str) -> bytes:
    now = utcnow()
    return json.dumps(
        {
            "format": 2,
            "id": str(uuid.uuid4()),
            "kind": kind,
            "host": "newer-worker",
            "pid": 1,
            "created_at": now.isoformat(),
            "expires_at": (now + timedelta(hours=1)).isoformat(),
            "a_field_of_format_2": True,
        }
    ).encode()


def test_a_newer_gc_lock_is_not_taken_over(store: Store) -> None:
    store.backend.create(layout.GC_LOCK, _newer("gc"))
    before = store.backend.get(layout.GC_LOCK)
    with pytest.raises(IntegrityError, match=r"newer gitfree.*upgrade"):
        store.gc(keep_last=1)
    assert store.backend.get(layout.GC_LOCK) == before


def test_a_newer_commit_lease_is_not_removed_as_stale(store: Store) -> None:
    key = layout.lease_key(str(uuid.uuid4()))
    store.backend.create(key, _newer("commit"))
    with pytest.raises(IntegrityError, match=r"newer gitfree.*upgrade"):
        store.gc()
    assert store.backend.exists(key)


def test_a_commit_beside_a_newer_gc_says_to_upgrade(store: Store, tmp_path: Path) -> None:
    store.backend.create(layout.GC_LOCK, _newer("gc"))
    with pytest.raises(IntegrityError, match=r"newer gitfree.*upgrade"):
        store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert store.datasets() == []
