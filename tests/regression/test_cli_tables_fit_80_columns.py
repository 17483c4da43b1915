"""The CLI's tables fit an 80-column terminal, and ``log`` keeps each version on one line.

Regression: ``gitfree log`` at 80 columns squeezed the ``created`` column until every date wrapped
onto two lines (``2026-12-01`` / ``21:25:57``), and ``show --files`` and ``diff`` printed lines as wide
as their longest path (the results console soft-wraps, which tables must not).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import write_tree

GITFREE = str(Path(sys.executable).with_name("gitfree"))
LONG = "a-long-folder-name-for-the-camera-feeds/of-site-three/with-new-labels/and-more/frame-000001.png"
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}\b")


def _gitfree(tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GITFREE_STORE": str(tmp_path / "store"),
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
        "COLUMNS": "80",
        "LOGNAME": "a-rather-long-user-name-of-a-build-robot",  # the author column's user
    }
    result = subprocess.run([GITFREE, *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _fits(output: str) -> list[str]:
    lines = output.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)
    return lines


def test_log_show_diff_and_tags_fit_80_columns(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"1", LONG: b"2"})
    message = "nightly ingest of the camera feeds from site three, with the new labels from the review team"
    _gitfree(tmp_path, "commit", "images", str(src), "-m", message, "--metric", "rows=120000")
    write_tree(src, {"b.txt": b"3" * 5000})
    _gitfree(tmp_path, "commit", "images", str(src), "-m", message)
    for tag in ("production", "staging-candidate", "reviewed-by-the-data-team"):
        _gitfree(tmp_path, "tag", "images@1", tag)

    log = _fits(_gitfree(tmp_path, "log", "images"))
    rows = [line for line in log if DATE.search(line)]
    assert len(rows) == 2 and len(log) == 3, "\n".join(log)  # a header, one line per version, dates whole
    assert log[0].split() == ["version", "created", "files", "size", "author", "tags", "message"]
    for number, row in zip(("2", "1"), rows, strict=True):
        assert row.split()[0] == number and DATE.search(row), row  # the date whole, on the version's line
        assert "a-rather" in row and "nightly" in row  # author and message cut to fit, not dropped
    assert "production" in rows[1]

    shown = _fits(_gitfree(tmp_path, "show", "images@1", "--files"))
    assert any(line.startswith("message") and "nightly" in line for line in shown)
    assert "".join(line.strip() for line in shown).count("frame-000001.png") == 1  # a long path folds, whole
    _fits(_gitfree(tmp_path, "diff", "images@1", "images@2"))
    _fits(_gitfree(tmp_path, "tags", "images"))
    _fits(_gitfree(tmp_path, "show", "images@2"))


def test_what_gc_says_fits_80_columns(tmp_path: Path) -> None:
    """gc's result was one sentence of over 200 characters (issue 14): now a line per fact, zeros left out."""
    src = write_tree(tmp_path / "src", {"a.txt": b"1"})
    for n in range(3):
        write_tree(src, {"a.txt": str(n).encode()})
        _gitfree(tmp_path, "commit", "images", str(src))
    dry = _fits(_gitfree(tmp_path, "gc", "--keep-last", "1", "--grace", "0s", "--dry-run"))
    assert dry[-1] == "would delete 2 versions and 4 objects (132 B); kept 1 version and 2 objects", dry
    done = _fits(_gitfree(tmp_path, "gc", "--keep-last", "1", "--grace", "0s"))
    assert done == ["deleted 2 versions and 4 objects (132 B); kept 1 version and 2 objects"], done


def test_what_fsck_says_fits_80_columns(tmp_path: Path) -> None:
    """fsck's result was one sentence that grew past 80 columns with each fact (issue 14): now a line each."""
    src = write_tree(tmp_path / "src", {"a.txt": b"1", "b.txt": b"2"})
    _gitfree(tmp_path, "commit", "images", str(src))
    assert _fits(_gitfree(tmp_path, "fsck")) == [
        "checked 1 version of 1 dataset, 0 tags, 2 objects",
        "2 objects checked for presence only (use --deep)",
        "no problems",
    ]
