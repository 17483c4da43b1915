"""An integer metric stays an integer: in the record, in the API, in JSON and in the CLI's output.

Regression: ``Version.metrics`` was ``dict[str, float]``, so ``--metric rows=120000`` (or
``metrics={"rows": 120000}``) was stored as ``120000.0`` and printed as such by ``show --json``
and ``log --json``. NaN and infinities are still refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import InputError, Store
from gitfree.cli import cli


def test_the_api_records_and_reads_back_integers_as_integers(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    src = write_tree(tmp_path / "src", {"a.txt": b"1"})
    made = store.commit("ds", src, metrics={"rows": 120000, "acc": 0.5, "loss": 2.0, "big": 2**63 - 1})
    read = Store(tmp_path / "store", cache_dir=tmp_path / "other-cache").show("ds@1")
    for version in (made, read):
        assert version.metrics == {"rows": 120000, "acc": 0.5, "loss": 2.0, "big": 2**63 - 1}
        assert type(version.metrics["rows"]) is int and type(version.metrics["big"]) is int
        assert type(version.metrics["loss"]) is float  # a float stays a float, even a whole one
    record = json.loads(next((tmp_path / "store").rglob("versions/*1.json")).read_text())["metrics"]
    assert record == {"rows": 120000, "acc": 0.5, "loss": 2.0, "big": 2**63 - 1}
    assert type(record["rows"]) is int and type(record["loss"]) is float  # JSON 120000, and 2.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 2**63, -(2**63) - 1])
def test_nan_infinities_and_integers_past_64_bits_are_refused(tmp_path: Path, bad: float) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    src = write_tree(tmp_path / "src", {"a.txt": b"1"})
    with pytest.raises(InputError, match="metric 'x'"):
        store.commit("ds", src, metrics={"x": bad})


def test_the_cli_keeps_integers_in_json_and_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    src = write_tree(tmp_path / "src", {"a.txt": b"1"})
    committed = runner.invoke(
        cli, ["commit", "ds", str(src), "--metric", "rows=120000", "--metric", "acc=0.875", "--metric", "w=3.0"]
    )
    assert committed.exit_code == 0, committed.output
    for args in (["show", "ds", "--json"], ["commit", "ds", str(src), "--json"]):
        output = runner.invoke(cli, args).output
        assert '"rows": 120000,' in output
        metrics = json.loads(output)["metrics"]
        assert metrics == {"rows": 120000, "acc": 0.875, "w": 3.0} and type(metrics["rows"]) is int
        assert type(metrics["w"]) is float
    assert '"rows": 120000,' in runner.invoke(cli, ["log", "ds", "--json"]).output
    shown = runner.invoke(cli, ["show", "ds"]).output
    assert "120000.0" not in shown
    assert [line.split()[-1] for line in shown.splitlines() if line.startswith("metric")] == ["120000", "0.875", "3.0"]


@pytest.mark.parametrize(
    ("value", "says"),
    [("nan", "finite"), ("inf", "finite"), ("-inf", "finite"), ("1" * 30, "64 bits"), ("lots", "must be a number")],
)
def test_the_cli_refuses_what_is_not_a_finite_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    src = write_tree(tmp_path / "src", {"a.txt": b"1"})
    result = CliRunner().invoke(cli, ["commit", "ds", str(src), "--metric", f"x={value}"])
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1
