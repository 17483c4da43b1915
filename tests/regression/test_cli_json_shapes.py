"""One JSON shape per concept: a version is the same object whichever command prints it, a tag too.

Regressions: ``commit --json`` printed the version's fields at the top level while ``pull --json``
nested them under ``"version"`` (beside ``"path"``); ``log --json`` and ``show --json`` had no tags,
which only the text table of ``log`` showed; no version object had its ``ref``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree.cli import cli

VERSION_KEYS = {
    "ref",
    "format",
    "dataset",
    "number",
    "id",
    "parent",
    "created_at",
    "message",
    "author",
    "pointer",
    "size",
    "nfiles",
    "metadata",
    "metrics",
    "inputs",
    "tags",
}
"""The keys of the version object: ``ref``, the record's fields, ``tags``."""


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(cli, [*args, "--json"])
        assert result.exit_code == 0, (result.output, result.exception)
        return json.loads(result.output)

    return invoke


def _version(data: dict[str, Any], *extra: str) -> dict[str, Any]:
    """The version object inside what a command printed: every version key, and only ``extra`` beside them."""
    assert set(data) == VERSION_KEYS | set(extra), set(data) ^ (VERSION_KEYS | set(extra))
    return {k: v for k, v in data.items() if k not in extra}


def test_a_version_is_the_same_object_in_commit_pull_show_and_log(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_tree(tmp_path / "src", {"a.txt": b"1", "b/c.txt": b"2"})
    committed = run("commit", "images", str(src), "-m", "first")
    assert committed["created"] is True
    first = _version(committed, "created")
    assert first["ref"] == "images@1" and first["number"] == 1 and first["tags"] == []

    tagged = run("tag", "images@1", "prod")
    assert tagged["ref"] == "images@prod" and tagged["tag"] == "prod" and tagged["number"] == 1
    run("tag", "images@1", "stable")
    first_tagged = {**first, "tags": ["prod", "stable"]}

    again = run("commit", "images", str(src))  # unchanged: the existing version, with its tags
    assert again["created"] is False
    assert _version(again, "created") == first_tagged

    pulled = run("pull", "images@prod", str(tmp_path / "out"))
    assert pulled["dest"] == str(tmp_path / "out")
    assert _version(pulled, "dest") == first_tagged

    assert _version(run("show", "images@1")) == first_tagged
    shown = run("show", "images@stable", "--files")
    assert _version(shown, "files") == first_tagged
    assert sorted(f["path"] for f in shown["files"]) == ["a.txt", "b/c.txt"]

    write_tree(src, {"d.txt": b"3"})
    second = _version(run("commit", "images", str(src)), "created")
    log = run("log", "images")
    assert [_version(v) for v in log] == [second, first_tagged]

    tags = run("tags", "images")
    assert [t["ref"] for t in tags] == ["images@prod", "images@stable"]
    assert tags[0] == tagged  # the same tag object from `tag` and `tags`
