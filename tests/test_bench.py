"""The benchmark cannot rot: its tiny size runs here (seconds), every contender on the small workload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_tiny_benchmark_runs_and_reports(tmp_path: Path) -> None:
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
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=540,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    small = results["samples"]["small"]
    for contender in ("gitfree", "dvc+git", "floor"):
        assert small["commit_cold"][contender][0]["seconds"] > 0
        assert small["pull_cold"][contender][0]["seconds"] > 0
    counts = results["counts"]["small"]
    # Warm pulls and a pull onto the same version download no object, and a no-op commit of an
    # unchanged dataset costs at most 3 requests (the targets of docs/benchmarks.md).
    assert counts["commit_noop"]["gitfree"]["requests"] <= 3
    assert counts["pull_same"]["gitfree"]["bytes_down"] < 10_000
    assert counts["pull_warm"]["gitfree"]["bytes_down"] < 10_000
    assert counts["commit_incremental"]["gitfree"]["bytes_up"] < counts["commit_cold"]["gitfree"]["bytes_up"] / 2
    report = (tmp_path / "report.md").read_text()
    assert "| commit_cold |" in report and "history" in report
