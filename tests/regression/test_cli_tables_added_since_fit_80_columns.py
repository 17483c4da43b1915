"""The commands added since issue 14 lay out in 80 columns without losing what a row says.

Regression: at 80 columns, ``gitfree audit`` with a long tag name cut every fixed column to a letter or two
(``2026-12-02 0…``, ``mov…``, a version column of ``2…``), and ``gitfree lineage`` cut each node's line at the
edge, so ``models/…-for-production@1`` and ``@2`` both read ``models/…-for-prod`` (the results console
soft-wraps: a rich tree printed through it is cropped). A long tag now folds in its column, and a lineage
node folds under its branch.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import write_tree

from gitfree import Store

GITFREE = str(Path(sys.executable).with_name("gitfree"))
RAW = "team-analytics/customer-churn-raw-events-exported-from-the-warehouse-nightly"
MODEL = "team-analytics/customer-churn-gradient-boosted-model-candidates-for-production"
TAG = "release-candidate-for-the-quarterly-business-review-2026-q3"
WHEN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}  ")


def _gitfree(tmp_path: Path, *args: str, summary: bool = False) -> list[str]:
    """The output lines of a command at 80 columns, each within them (but for a one-line ``summary`` after a
    table: results are sentences the terminal wraps, so they can be read and searched whole)."""
    env = {**os.environ, "GITFREE_STORE": str(tmp_path / "store"), "GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    env |= {"HOME": str(tmp_path), "COLUMNS": "80"}
    result = subprocess.run([GITFREE, *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    too_wide = [line for line in (lines[:-1] if summary else lines) if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)
    return lines


def _column(lines: list[str], header: str, first: int, last: int) -> str:
    """The text of one column over lines ``first`` to ``last``: a folded cell, whole."""
    start, end = lines[0].index(header), lines[0].index("version")
    return "".join(line[start:end].strip() for line in lines[first : last + 1])


def test_audit_lineage_tag_history_and_metrics_at_80_columns(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    raw = store.commit(RAW, write_tree(tmp_path / "raw", {"a.csv": b"1"}))
    for n in (1, 2):
        model = write_tree(tmp_path / f"m{n}", {"model.bin": bytes([n])})
        store.commit(MODEL, model, inputs=[raw.ref], metrics={"area_under_the_roc_curve": 0.9 + n / 100, "rows": n})
    store.tag(f"{MODEL}@2", TAG, message="for the review")
    store.tag(f"{MODEL}@1", TAG, move=True, message="moved back")

    audit = _gitfree(tmp_path, "audit", MODEL)
    assert audit[0].split() == ["when", "event", "tag", "version", "by", "message"]
    rows = [line for line in audit if WHEN.match(line)]
    assert [row.split()[2] for row in rows] == ["moved", "created", "committed", "committed"], "\n".join(audit)
    assert "2 → 1" in rows[0] and "→ 2" in rows[1] and rows[2].split()[3] == "2"  # the version column whole
    starts = [i for i, line in enumerate(audit) if WHEN.match(line)]
    assert _column(audit, "tag", starts[0], starts[1] - 1) == TAG  # the tag folds in its column, whole

    for args in (["lineage", f"{MODEL}@2"], ["lineage", "--down", f"{RAW}@1"]):
        tree = _gitfree(tmp_path, *args)
        text = "".join(re.sub(r"^[\s│├└─]+", "", line) for line in tree)
        for ref in (f"{MODEL}@2", f"{RAW}@1"):
            assert ref in text, "\n".join(tree)  # every node's ref, whole (folded onto the next line)
    assert f"{MODEL}@1" in "".join(re.sub(r"^[\s│├└─]+", "", line) for line in tree)

    _gitfree(tmp_path, "tag-history", MODEL, TAG)
    _gitfree(tmp_path, "metrics", MODEL)
    _gitfree(tmp_path, "metrics", "diff", f"{MODEL}@1", f"{MODEL}@2", summary=True)
