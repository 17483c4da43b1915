"""Every failure a user can cause is one line on stderr with its documented exit code, never a traceback.

Regressions: ``--store s3:/data/x`` and ``--store s3://`` crashed with a rich ``MarkupError`` (the
message ``s3://BUCKET[/PREFIX]`` was read as markup); ``s3://[x`` and a malformed endpoint ended as
"unexpected ValueError/EndpointResolutionError", exit 1; a click usage error printed three lines.
Data printed through rich (a commit message holding ``[/PREFIX]``) crashed ``log`` and ``show``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import cli as cli_module
from gitfree.cli import cli

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "GITFREE_STORE": str(tmp_path / "store"),
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
        "COLUMNS": "400",  # wide tables: no cell wraps
        **env,
    }
    return subprocess.run([GITFREE, *args], capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (["--store", "s3:/data/x", "datasets"], {}, 2, "needs s3://BUCKET/PREFIX"),
        (["--store", "s3:/data/x", "datasets"], {}, 2, "e.g. s3://data/x"),
        (["--store", "s3://", "datasets"], {}, 2, "s3://BUCKET/PREFIX"),
        (["--store", "s3://[x", "datasets"], {}, 2, "s3://BUCKET/PREFIX"),
        (["--store", "s3://localhost:9000/p", "datasets"], {}, 2, "GITFREE_ENDPOINT_URL"),
        (["--endpoint-url", "htp://x", "--store", "s3://b", "datasets"], {}, 6, "http://x"),
        (["--store", "s3://b", "datasets"], {"GITFREE_ENDPOINT_URL": "127.0.0.1:9000"}, 6, "http://127.0.0.1:9000"),
        (["--store", "s3://b", "datasets"], {"GITFREE_ENDPOINT_URL": "htp://127.0.0.1:9000"}, 6, "http://"),
        (["pull"], {}, 2, "Missing argument 'REF'"),
        (["pull", "ds@1"], {}, 2, "gitfree pull --help"),
        (["--jobs", "0", "datasets"], {}, 2, "--jobs"),
        (["nosuchcommand"], {}, 2, "nosuchcommand"),
    ],
)
def test_failures_are_one_line_with_their_exit_code(
    tmp_path: Path, args: list[str], env: dict[str, str], code: int, says: str
) -> None:
    result = _run(tmp_path, *args, **env)
    line = _one_error_line(result)
    assert result.returncode == code, result.stderr
    assert says in line


def test_a_message_with_brackets_is_printed_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich markup is never parsed in data: a commit message or file names holding ``[...]``."""
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    # Wide tables: no cell wraps. The console's width, not COLUMNS: rich keeps the COLUMNS it finds when gitfree.cli
    # is imported, and an xdist worker starts with COLUMNS=80 (pytest imports readline, which exports it).
    wide = cli_module._Console()
    wide.width = 400
    monkeypatch.setattr(cli_module, "out", wide)
    source = write_tree(tmp_path / "src", {"[bold]x.txt": b"1", "[/PREFIX]": b"2"})
    message = "from s3://BUCKET[/PREFIX] and [red]red[/red] :thumbs_up:"
    runner = CliRunner()
    committed = runner.invoke(cli, ["commit", "ds", str(source), "-m", message])
    assert committed.exit_code == 0, (committed.output, committed.exception)
    for args in (["log", "ds"], ["show", "ds", "--files"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (result.output, result.exception)
        assert message in result.output
    listing = runner.invoke(cli, ["show", "ds", "--files"]).output
    assert "[bold]x.txt" in listing and "[/PREFIX]" in listing


def test_an_error_message_with_brackets_is_printed_as_it_is(tmp_path: Path) -> None:
    """A GitfreeError whose text holds markup-like brackets (here a dataset name) stays one literal line."""
    result = _run(tmp_path, "log", "[/x]")
    line = _one_error_line(result)
    assert result.returncode == 2
    assert "'[/x]'" in line
