"""The example training flow records its count of values as an integer.

Regression (issue 14, "integer metrics stay integers"): ``gitfree.flows.train_example`` committed its model
with ``metrics={"values": float(len(values))}``, so a count of 2 was stored, shown and compared as ``2.0``
although every path below it (the task, the record, ``metrics --json``) keeps integers. A real flow run on the
test process's Prefect server, over a local store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from gitfree import Store
from gitfree.cli import cli
from gitfree.flows import train_example


@pytest.mark.usefixtures("prefect_harness")
def test_the_example_model_counts_its_values_in_an_integer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = (tmp_path / "store").as_uri()
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    Store(url).commit("sensors", write_tree(tmp_path / "data", {"a.csv": b"t,v\n0,1.5\n1,2.5\n"}))
    model = train_example("sensors@1", store=url)
    assert model.metrics == {"values": 2, "mean": 2.0}
    assert type(model.metrics["values"]) is int and type(model.metrics["mean"]) is float
    shown = CliRunner().invoke(cli, ["--store", url, "metrics", "models/sensor-mean", "--json"])
    assert shown.exit_code == 0, shown.output
    [point] = json.loads(shown.output)
    assert point["metrics"] == {"values": 2, "mean": 2.0} and type(point["metrics"]["values"]) is int
