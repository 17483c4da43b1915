"""``fsck --repair`` moves ``latest.json`` back and overwrites the only intact copy of a corrupted head record.

The newest record (ds@4) is corrupted on the store; ``latest.json`` still embeds its full, valid record (Latest
carries "the full record at that number"). fsck reports ``bad_record`` for ds@4 and ``bad_latest`` for a hint
that is exactly right, and ``--repair`` rewrites the hint to ds@3: the hint moves from 4 back to 3
(docs/design.md, fsck step 7: "the repair never moves the hint back"), and the last good copy of ds@4's record
is gone, so it can no longer be restored from the hint. Seen with the CLI: ``latest -> 4``, then after
``gitfree fsck --repair``, ``latest -> 3`` (exit 5: ds@4 still broken).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import Store
from gitfree.versioning import layout
from gitfree.versioning.models import Latest


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_repair_keeps_a_hint_that_names_a_corrupted_newer_record(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    store = make_store(kind)
    for i in range(1, 5):
        store.commit("ds", write_tree(tmp_path / "src", {f"f{i}": str(i).encode()}))
    key = layout.latest_key("ds")
    before = Latest.model_validate_json(store.backend.get(key)[0])
    assert before.number == 4
    store.backend.put(layout.version_key("ds", 4), b'{"format": 1, "dataset": "ds", "number": 4, "id": "x"}')

    report = store.fsck(repair=True)
    assert any(p.kind == "bad_record" for p in report.problems)
    after = Latest.model_validate_json(store.backend.get(key)[0])
    assert after.number >= before.number, f"fsck --repair moved latest.json back from {before.number} to {after.number}"
    assert after.version == before.version, "the hint's copy of ds@4's record was overwritten"
