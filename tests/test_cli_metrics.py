"""``gitfree metrics``, ``gitfree metrics diff``, the metric deltas of ``gitfree diff`` and ``log --metric``:
tables for people, JSON for scripts, one line and an exit code on bad input (on SeaweedFS and ``file://``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree
from rich.cells import cell_len

from gitfree import Store
from gitfree.cli import cli
from gitfree.testing import SeaweedFS

GITFREE = str(Path(sys.executable).with_name("gitfree"))
WIDE = "検証データでの精度と再現率の平均"
"""A metric name of 16 characters and 32 terminal cells."""
Run = Callable[..., str]


def _env(tmp_path: Path, kind: str, seaweedfs: SeaweedFS | None = None, s3_url: str = "") -> dict[str, str]:
    """The environment of a `gitfree` pointed at a fresh store: a SeaweedFS prefix or a local directory."""
    found = {"GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    if kind == "s3" and seaweedfs is not None:
        return {**found, **seaweedfs.env(), "GITFREE_STORE": s3_url}
    return {**found, "GITFREE_STORE": str(tmp_path / "store")}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A local store: what the command prints does not depend on the backend (test_on_seaweedfs checks that)."""
    return _env(tmp_path, "file")


@pytest.fixture
def run(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Run:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result.output

    return invoke


def test_on_seaweedfs(tmp_path: Path, seaweedfs: SeaweedFS, s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same output from a SeaweedFS store (the other tests use a local one, the commands being the same)."""
    for key, value in _env(tmp_path, "s3", seaweedfs, s3_url).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    src = tmp_path / "src"
    for i, acc in enumerate(["0.89", "0.91"]):
        write_tree(src, {"f": str(i).encode()})
        assert (
            runner.invoke(cli, ["commit", "model", str(src), "--metric", f"acc={acc}", "--metric", "rows=7"]).exit_code
            == 0
        )
    history = runner.invoke(cli, ["metrics", "model"])
    assert history.exit_code == 0 and _rows(history.output)[0][-5:] == ["acc", "0.91", "▲", "+0.02", "(+2.2%)"]
    compared = json.loads(runner.invoke(cli, ["diff", "model@1", "model@2", "--json"]).output)["metrics"]
    assert compared["metrics"][0] == {
        "name": "acc",
        "status": "changed",
        "old": 0.89,
        "new": 0.91,
        "delta": 0.02,
        "relative": compared["metrics"][0]["relative"],
    }
    assert compared == json.loads(runner.invoke(cli, ["metrics", "diff", "model@1", "model@2", "--json"]).output)
    unknown = runner.invoke(cli, ["metrics", "model", "--metric", "loss"])
    assert unknown.exit_code == 3 and "its metrics are: acc, rows" in unknown.output


def _commits(run: Run, tmp_path: Path, dataset: str, metrics: list[list[str]]) -> None:
    src = tmp_path / f"src-{dataset.replace('/', '-')}"
    for i, pairs in enumerate(metrics):
        write_tree(src, {"data.txt": f"{i}".encode()})
        args = [a for pair in pairs for a in ("--metric", pair)]
        run("commit", dataset, str(src), *args)


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:]]


def test_metrics_lists_the_history_with_its_trend(run: Run, tmp_path: Path) -> None:
    _commits(
        run, tmp_path, "model", [["acc=0.89", "rows=100"], [], ["acc=0.91", "rows=100", "loss=0.25"], ["loss=0.2"]]
    )
    table = run("metrics", "model")
    assert table.splitlines()[0].split() == ["version", "created", "metric", "value", "change"]
    rows = _rows(table)
    assert [r[0] for r in rows] == ["4", "3", "3", "3", "1", "1"]  # version 2 records no metric
    assert rows[0][-5:] == ["loss", "0.2", "▼", "-0.05", "(-20.0%)"]
    assert rows[1][-5:] == ["acc", "0.91", "▲", "+0.02", "(+2.2%)"]
    assert rows[2] == ["3", "loss", "0.25", "first"] and rows[3] == ["3", "rows", "100", "="]
    assert rows[4][-3:] == ["acc", "0.89", "first"] and rows[5] == ["1", "rows", "100", "first"]

    assert _rows(run("metrics", "model", "--metric", "acc")) == [r for r in rows if "acc" in r]
    limited = _rows(run("metrics", "model", "--metric", "acc", "--limit", "1"))
    assert len(limited) == 1 and limited[0][-4:] == ["0.91", "▲", "+0.02", "(+2.2%)"]  # its trend: one more was read
    assert _rows(run("metrics", "log", "model", "-n", "1")) == [rows[0]]

    points = json.loads(run("metrics", "model", "--json"))
    assert [p["ref"] for p in points] == ["model@4", "model@3", "model@1"]
    assert set(points[0]) == {"ref", "number", "created_at", "metrics"}
    assert (
        points[1]["metrics"] == {"acc": 0.91, "rows": 100, "loss": 0.25} and type(points[1]["metrics"]["rows"]) is int
    )
    assert json.loads(run("metrics", "--json", "model", "--metric", "rows", "-n", "1")) == [
        {**points[1], "metrics": {"rows": 100}}
    ]


def test_metrics_diff_and_the_deltas_of_diff(run: Run, tmp_path: Path) -> None:
    _commits(run, tmp_path, "model", [["acc=0.89", "rows=100", "old=1"], ["acc=0.91", "rows=120", "f1=0.5"]])
    table = run("metrics", "diff", "model@1", "model@2")
    assert table.splitlines()[0].split() == ["metric", "old", "new", "change"]
    assert _rows(table)[:4] == [
        ["acc", "0.89", "0.91", "▲", "+0.02", "(+2.2%)"],
        ["f1", "-", "0.5", "added"],
        ["old", "1", "-", "removed"],
        ["rows", "100", "120", "▲", "+20", "(+20.0%)"],
    ]
    assert "model@1 → model@2: 2 metric(s) changed, 0 unchanged, 1 added, 1 removed" in table

    compared = json.loads(run("metrics", "diff", "model@1", "model", "--json"))
    assert compared["old"] == "model@1" and compared["new"] == "model@2"
    assert compared["added"] == ["f1"] and compared["removed"] == ["old"]
    rows = next(m for m in compared["metrics"] if m["name"] == "rows")
    assert rows == {"name": "rows", "status": "changed", "old": 100, "new": 120, "delta": 20, "relative": 0.2}

    diff = run("diff", "model@1", "model@2")
    files_at, metrics_at = diff.index("1 modified"), diff.index("2 metric(s) changed")
    assert files_at < diff.index("acc") < metrics_at  # under the file changes
    both = json.loads(run("diff", "model@1", "model@2", "--json"))
    assert set(both) == {"old", "new", "entries", "metrics"} and both["metrics"] == compared
    assert [e["path"] for e in both["entries"]] == ["data.txt"]

    _commits(run, tmp_path, "plain", [[], []])
    assert "metric" not in run("diff", "plain@1", "plain@2")  # no metrics: the file changes only
    assert json.loads(run("diff", "plain@1", "plain@2", "--json"))["metrics"]["metrics"] == []
    assert "neither plain@1 nor plain@2 records a metric" in run("metrics", "diff", "plain@1", "plain@2")


def test_log_adds_a_column_per_metric(run: Run, tmp_path: Path) -> None:
    _commits(run, tmp_path, "model", [["old=7"], ["acc=0.5", "rows=3"], ["acc=0.75"]])
    table = run("log", "model", "--metric", "acc", "--metric", "rows")
    assert table.splitlines()[0].split()[:6] == ["version", "created", "files", "size", "acc", "rows"]
    assert [r[:1] + r[6:8] for r in _rows(table)] == [["3", "0.75", "-"], ["2", "0.5", "3"], ["1", "-", "-"]]
    # a metric only an older version records is no typo, even when --limit leaves that version out
    assert _rows(run("log", "model", "--metric", "old", "-n", "1"))[0][6] == "-"
    assert json.loads(run("log", "model", "--metric", "acc", "--json")) == json.loads(run("log", "model", "--json"))


BAD_INPUT = [
    (["metrics", "nope"], 3, "dataset 'nope' does not exist"),
    (["metrics", "model", "--metric", "acuracy"], 3, "did you mean 'acc'?); its metrics are: acc, rows"),
    (["log", "model", "--metric", "acuracy"], 3, "its metrics are: acc, rows"),
    (["metrics", "plain", "--metric", "acc"], 3, "records no metrics at all (commit with --metric NAME=NUMBER"),
    (["metrics", "model@2"], 2, "give its name ('model')"),
    (["metrics", "Model"], 2, "invalid dataset name"),
    (["metrics", "model", "--limit", "0"], 2, "--limit"),
    (["metrics", "diff"], 2, "gitfree metrics log diff"),
    (["metrics", "diff", "model@1"], 2, "compares two versions"),
    (["metrics", "diff", "model@1", "model@9"], 3, "has no version 9; it has 2 versions (1 and 2)"),
    (["metrics", "diff", "model@1", "model@prod"], 3, "no tag 'prod'"),
    (["diff", "model@1", "model@@2"], 2, "malformed ref"),
    (["metrics", "dif", "model@1", "model@2"], 2, "to compare two versions, run gitfree metrics diff OLD NEW"),
]


def test_bad_input_is_one_line_with_its_exit_code(run: Run, tmp_path: Path) -> None:
    _commits(run, tmp_path, "model", [["acc=0.5", "rows=3"], ["acc=0.6"]])
    _commits(run, tmp_path, "plain", [[]])
    for args, code, says in BAD_INPUT:
        output = run(*args, code=code)
        assert says in output, (args, output)
        assert "Traceback" not in output and len(output.strip().splitlines()) == 1, (args, output)


def test_a_dataset_without_metrics_says_so(run: Run, tmp_path: Path) -> None:
    _commits(run, tmp_path, "plain", [[], []])
    said = run("metrics", "plain")
    assert (
        said.strip() == "plain has no metrics: none of its versions records one "
        "(`gitfree commit plain PATH --metric NAME=NUMBER` records some)"
    )
    assert json.loads(run("metrics", "plain", "--json")) == []


def test_datasets_named_diff_and_log(run: Run, tmp_path: Path) -> None:
    """The first word after ``metrics`` is a subcommand when it is ``log`` or ``diff``, else a dataset."""
    _commits(run, tmp_path, "diff", [["acc=0.1"], ["acc=0.2"]])
    _commits(run, tmp_path, "log", [["n=1"]])
    assert [r[0] for r in _rows(run("metrics", "log", "diff"))] == ["2", "1"]
    assert [r[0] + r[-3] for r in _rows(run("metrics", "log", "log"))] == ["1n"]
    assert "diff@1 → diff@2: 1 metric(s) changed" in run("metrics", "diff", "diff@1", "diff")
    assert [r[0] for r in _rows(run("metrics", "--limit", "1", "diff"))] == ["2"]  # options first: still the dataset


def _gitfree(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "HOME": str(tmp_path), "COLUMNS": "80"}
    return subprocess.run([GITFREE, *args], capture_output=True, text=True, env=full, timeout=120, cwd=tmp_path)


def test_tables_fit_80_columns(env: dict[str, str], tmp_path: Path) -> None:
    """Long metric names and every digit of a float fit 80 columns: folded, never cut."""
    store = Store(env["GITFREE_STORE"], cache_dir=tmp_path / "api-cache")
    src = tmp_path / "src"
    long = "validation/accuracy-on-the-held-out-camera-feeds-of-site-three-with-new-labels"
    for i, value in enumerate([-1.2345678901234567e-300, 1.2345678901234567e300]):
        write_tree(src, {"f": str(i).encode()})
        store.commit("model", src, metrics={long: value, "rows": 9_223_372_036_854_775_807 - i, WIDE: i})
    for args in (
        ["metrics", "model"],
        ["metrics", "diff", "model@1", "model@2"],
        ["log", "model", "--metric", long],  # one column of a long name and long values (more may not fit)
        ["log", "model", "--metric", WIDE, "--metric", "rows"],
    ):  # (`diff` prints the table of `metrics diff`)
        result = _gitfree(env, tmp_path, *args)
        assert result.returncode == 0, result.stderr
        too_wide = [line for line in result.stdout.splitlines() if cell_len(line) > 80]
        assert not too_wide, "\n".join(too_wide)
        assert "…" not in "".join(result.stdout.splitlines()[1:]), result.stdout  # values fold, never cut
        assert not (args[0] == "metrics" and "1.2345678901234" not in result.stdout), result.stdout


def test_markup_and_terminal_escapes_in_metric_names_are_shown_not_obeyed(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    store = Store(env["GITFREE_STORE"], cache_dir=tmp_path / "api-cache")
    src = tmp_path / "src"
    evil = "[bold red]x[/] \x1b]0;pwned\x1b\\\x1b[2J"
    for i in range(2):
        write_tree(src, {"f": str(i).encode()})
        store.commit("model", src, metrics={evil: i})
    for args in (
        ["metrics", "model"],
        ["metrics", "diff", "model@1", "model@2"],
        ["diff", "model@1", "model@2"],
        ["log", "model", "--metric", evil],
    ):
        output = run(*args)
        assert "\x1b" not in output and "[bold red]x" in output, output  # `log` shortens a long header
    unknown = run("metrics", "model", "--metric", "[red]acc\x1b[2J", code=3)
    assert "\x1b" not in unknown and "[red]acc" in unknown
