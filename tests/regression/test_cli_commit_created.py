"""``gitfree commit`` says whether it made the version, from ``Version.created``, in text and JSON.

Regression: ``commit --json`` had no ``created`` (the field is excluded from the record's dump), so a
script could not tell "committed" from "unchanged" without comparing ids it never chose.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree.cli import cli


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    return invoke


def test_commit_json_says_created_and_text_says_unchanged(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_tree(tmp_path / "src", {"a.txt": b"1"})
    first = json.loads(run("commit", "ds", str(src), "--json"))
    assert first["created"] is True and first["number"] == 1
    again = json.loads(run("commit", "ds", str(src), "--json"))
    assert again["created"] is False and again["number"] == 1 and again["id"] == first["id"]
    assert run("commit", "ds", str(src)).startswith("unchanged: ds@1 already holds this data")
    forced = json.loads(run("commit", "ds", str(src), "--force", "--json"))
    assert forced["created"] is True and forced["number"] == 2
    write_tree(src, {"b.txt": b"2"})
    assert run("commit", "ds", str(src)).startswith("committed ds@3")
    assert "created" not in json.loads(run("show", "ds", "--json"))  # not part of the record
