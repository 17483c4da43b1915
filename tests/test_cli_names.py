"""Hostile file names in the CLI's listings (issue 18): a name with a line break, an ANSI escape, a
bidirectional override or a leading quote is printed quoted with C escapes by ``ls``, ``show --files`` and
``diff`` (as ``ls -b`` and git quote), so it can neither fake a line nor recolour the terminal; ``--json``
keeps every name exact. Real files with those names, committed to a ``file://`` store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree.cli import cli

HOSTILE = {
    "a\nb.csv": ('"a\\nb.csv"', b"1"),
    "\x1b[31mred.txt": ('"\\x1b[31mred.txt"', b"2"),
    '"q.txt': ('"\\"q.txt"', b"3"),
    "d/x\u202ey.txt": ('"d/x\\u202ey.txt"', b"4"),
    "tab\tand.txt": ('"tab\\tand.txt"', b"5"),
    "plain é.txt": ("plain é.txt", b"6"),
}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GITFREE_STORE", (tmp_path / "store").as_uri())
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    return invoke


def _clean(output: str) -> None:
    assert "\x1b" not in output and "\u202e" not in output and "\t" not in output and "\r" not in output


def test_ls_show_and_diff_quote_names_a_terminal_would_act_on_and_json_keeps_them(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_tree(tmp_path / "src", {name: data for name, (_, data) in HOSTILE.items()})
    run("commit", "ds", str(src))
    listed = run("ls", "ds@1")
    _clean(listed)
    top = sorted(shown for name, (shown, _) in HOSTILE.items() if "/" not in name)
    assert sorted(listed.splitlines()) == sorted([*top, "d/"])  # one line per name: no fake line
    assert run("ls", "ds@1", "d").splitlines() == ['"x\\u202ey.txt"']
    long = run("ls", "-l", "ds@1")
    _clean(long)
    assert [line.split("  ")[-1] for line in long.splitlines()] == listed.splitlines()

    shown = run("show", "ds@1", "--files")
    _clean(shown)
    for quoted, _ in HOSTILE.values():
        assert sum(quoted in line for line in shown.splitlines()) == 1

    (src / "a\nb.csv").write_bytes(b"changed")
    (src / '"q.txt').unlink()
    run("commit", "ds", str(src))
    diffed = run("diff", "ds@1", "ds@2")
    _clean(diffed)
    lines = diffed.splitlines()
    assert any(line.startswith("~") and '"a\\nb.csv"' in line for line in lines)
    assert any(line.startswith("-") and '"\\"q.txt"' in line for line in lines)

    exact = {row["name"] for row in json.loads(run("ls", "ds@1", "--json"))}
    assert exact == {n for n in HOSTILE if "/" not in n} | {"d/"}
    assert {f["path"] for f in json.loads(run("show", "ds@1", "--files", "--json"))["files"]} == set(HOSTILE)
    entries = json.loads(run("diff", "ds@1", "ds@2", "--json"))["entries"]
    assert {e["path"] for e in entries} == {"a\nb.csv", '"q.txt'}
