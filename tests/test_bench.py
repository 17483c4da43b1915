"""The benchmark cannot rot: its tiny size runs here, gitfree's request and byte targets are held.

The default suite runs gitfree and the transfer floor (seconds); ``make slow`` runs every contender,
DVC+git and the gitfree CLI too (about a minute: DVC's commands are most of it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tiny_benchmark(out: Path, contenders: list[str]) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--size",
            "tiny",
            "--reps",
            "1",
            "--workloads",
            "small",
            "--contenders",
            ",".join(contenders),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=540,
    )
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    small = results["samples"]["small"]
    for contender in contenders:
        assert small["commit_cold"][contender][0]["seconds"] > 0, contender
        if contender != "gitfree-cli":  # the CLI's contender measures warm pulls only
            assert small["pull_cold"][contender][0]["seconds"] > 0, contender
    counts = results["counts"]["small"]
    # Warm pulls and a pull onto the same version download no object, and a no-op commit of an
    # unchanged dataset costs at most 3 requests (the targets of docs/benchmarks.md).
    assert counts["commit_noop"]["gitfree"]["requests"] <= 3
    assert counts["pull_same"]["gitfree"]["bytes_down"] < 10_000
    assert counts["pull_warm"]["gitfree"]["bytes_down"] < 10_000
    assert counts["commit_incremental"]["gitfree"]["bytes_up"] < counts["commit_cold"]["gitfree"]["bytes_up"] / 2
    report = (out / "report.md").read_text()
    assert "| commit_cold |" in report and "history" in report


@pytest.mark.timeout(300)
def test_tiny_benchmark_of_gitfree_and_the_floor(tmp_path: Path) -> None:
    """gitfree's operations and the s5cmd/boto3/md5 floor, measured, counted and reported."""
    _tiny_benchmark(tmp_path, ["gitfree", "floor"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_benchmark_runs_and_reports(tmp_path: Path) -> None:
    """Every contender of ``make bench``: DVC+git and the gitfree CLI besides."""
    _tiny_benchmark(tmp_path, ["gitfree", "gitfree-cli", "dvc+git", "floor"])
