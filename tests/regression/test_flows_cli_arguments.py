"""``gitfree-flows`` checks its arguments before Prefect starts, fails in one line, and says "unchanged".

Regressions: a missing source or a bad dataset name started a temporary Prefect server, then
printed a traceback (the name was checked inside the flow); there was no ``--version`` and some
options had no help; a run that made no version printed the same line as one that did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import write_tree

GITFREE_FLOWS = str(Path(sys.executable).with_name("gitfree-flows"))


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")
    }  # no server configured: a flow run would start a temporary one
    env.update(
        HOME=str(tmp_path),
        PREFECT_HOME=str(tmp_path / "prefect"),
        GITFREE_STORE=str(tmp_path / "store"),
        GITFREE_CACHE_DIR=str(tmp_path / "cache"),
    )
    started = time.monotonic()
    process = subprocess.Popen(
        [GITFREE_FLOWS, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,  # so a Prefect server it started (old code) goes with it
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["ingest", "{tmp}/not-there", "demo/sensors"], 2, "does not exist"),
        (["ingest", "{tmp}/src", "Bad_Name"], 2, "invalid dataset name 'Bad_Name'"),
        (["ingest", "{tmp}/src", "demo/sensors", "--cron", "every night"], 2, "--cron"),
        (["ingest", "ftp://host/data", "demo/sensors"], 2, "s3:// prefix or an http(s) URL"),
        (["ingest", "{tmp}/src", "demo/sensors", "--store", "s3://"], 2, "s3://BUCKET/PREFIX"),
        (["pipeline", "{tmp}/not-there", "demo/sensors"], 2, "does not exist"),
        (["pipeline", "{tmp}/src", "demo/sensors", "--model-dataset", "Models"], 2, "invalid dataset name 'Models'"),
        (["pull", "demo/sensors@@", "{tmp}/out"], 2, "malformed ref"),
        (["pull", "demo/nothing@1", "{tmp}/out"], 3, "does not exist"),
        (["pull"], 2, "Missing argument 'REF'"),
    ],
)
def test_bad_arguments_fail_in_one_line_before_prefect_starts(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    write_tree(tmp_path / "src", {"a.csv": b"x,1\n"})
    result, elapsed = _run(tmp_path, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "temporary server" not in result.stderr, result.stderr[-3000:]  # Prefect was never started
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr[-3000:]
    assert result.returncode == code, result.stderr
    assert elapsed < 60, f"{elapsed:.1f} s"


def test_version_and_help_for_every_option(tmp_path: Path) -> None:
    from gitfree.flows.__main__ import main

    result, _ = _run(tmp_path, "--version")
    assert result.returncode == 0 and "version" in result.stdout, result.stderr
    assert isinstance(main, click.Group)
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"gitfree-flows {name} {param.opts[0]} has no help"
        assert command.help, f"gitfree-flows {name} has no help"


def test_an_ingestion_that_makes_no_version_says_unchanged(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitfree.flows.__main__ import main

    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    source = write_tree(tmp_path / "sensors", {"a.csv": b"t,v\n1,2\n"})
    runner = CliRunner()
    first = runner.invoke(main, ["ingest", str(source), "demo/sensors"])
    assert first.exit_code == 0, (first.output, first.exception)
    assert "demo/sensors@1: 1 file" in first.stdout and "unchanged" not in first.stdout
    second = runner.invoke(main, ["ingest", str(source), "demo/sensors"])
    assert second.exit_code == 0, (second.output, second.exception)
    assert "unchanged: demo/sensors@1 already holds this data" in second.stdout
