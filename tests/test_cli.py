"""The ``gitfree`` command: the same operations, JSON for scripts, one line and an exit code on errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import REMOTE_KINDS, Servers, read_tree, write_tree

from gitfree.cli import cli

GITFREE = str(Path(sys.executable).with_name("gitfree"))


@pytest.fixture(params=REMOTE_KINDS)
def run(request: pytest.FixtureRequest, tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The CLI on a store on S3, Azure Blob or GCS, reached through the environment (``GITFREE_*`` and the
    service's own variables), as a user's shell would."""
    for key, value in servers.env(request.param).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITFREE_STORE", servers.url(request.param))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result.output

    return invoke


def test_commit_log_show_diff_tag_pull_export(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_tree(tmp_path / "src", {"a.txt": b"one", "b/c.txt": b"two"})
    assert "committed images@1: 2 files" in run(
        "commit",
        "images",
        str(src),
        "-m",
        "first",
        "--meta",
        "source=cam-3",
        "--meta",
        'k={"x": 1}',
        "--metric",
        "rows=2",
    )
    assert "unchanged: images@1" in run("commit", "images", str(src))
    write_tree(src, {"a.txt": b"one!", "new.txt": b"3"})
    created = json.loads(run("commit", "images", str(src), "--input", "images@1", "--json"))
    assert created["number"] == 2 and created["inputs"] == [{"dataset": "images", "number": 1, "store": None}]

    versions = json.loads(run("log", "images", "--json"))
    assert [v["number"] for v in versions] == [2, 1]
    assert versions[1]["metadata"] == {"source": "cam-3", "k": {"x": 1}} and versions[1]["metrics"] == {"rows": 2}
    assert type(versions[1]["metrics"]["rows"]) is int  # --metric rows=2 is an integer, not 2.0
    table = run("log", "images")
    assert "first" in table and "version" in table

    shown = json.loads(run("show", "images@1", "--json", "--files"))
    assert sorted(f["path"] for f in shown["files"]) == ["a.txt", "b/c.txt"]
    assert "images@2" in run("show", "images")

    diff = json.loads(run("diff", "images@1", "images@2", "--json"))
    assert [(e["path"], e["status"]) for e in diff["entries"]] == [("a.txt", "modified"), ("new.txt", "added")]
    assert "1 added, 0 removed, 1 modified" in run("diff", "images@1", "images@2")

    assert "images@prod → images@1" in run("tag", "images@1", "prod")
    run("tag", "images@2", "prod", code=4)
    assert json.loads(run("tag", "images@2", "prod", "--move", "--json"))["number"] == 2
    assert [t["tag"] for t in json.loads(run("tags", "images", "--json"))] == ["prod"]
    assert json.loads(run("datasets", "--json")) == ["images"]

    assert "pulled images@1" in run("pull", "images@1", str(tmp_path / "out"))
    assert read_tree(tmp_path / "out") == {"a.txt": b"one", "b/c.txt": b"two"}
    (tmp_path / "out" / "a.txt").write_bytes(b"edited here")  # a local change: pulling over it needs --overwrite
    run("pull", "images@2", str(tmp_path / "out"), code=2)
    run("pull", "images@2", str(tmp_path / "out"), "--overwrite")
    assert read_tree(tmp_path / "out")["new.txt"] == b"3"
    run("pull", "images", str(tmp_path / "labels"), "--path", "b")
    assert read_tree(tmp_path / "labels") == {"b/c.txt": b"two"}

    assert "dvc pull" in run("export", "images@prod", str(tmp_path / "images.dvc"))
    assert "md5:" in (tmp_path / "images.dvc").read_text()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "nope"], 3, "does not exist"),
        (["show", "Bad@@ref"], 2, "malformed ref"),
        (["commit", "ds", "/definitely/not/here"], 2, "does not exist"),
        (["commit", "ds", "x", "--metric", "acc=high"], 2, "must be a number"),
        (["--store", "hdfs://x/y", "datasets"], 6, "unknown scheme"),
    ],
)
def test_errors_are_one_line_with_distinct_exit_codes(run, args: list[str], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    output = run(*args, code=code)
    assert message in output
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1


def test_real_process_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    env = {
        "GITFREE_STORE": str(tmp_path / "store"),
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    missing = subprocess.run([GITFREE, "log", "nothing"], capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 3
    assert missing.stderr.strip().startswith("error: dataset 'nothing' does not exist")
    assert "Traceback" not in missing.stderr
    write_tree(tmp_path / "src", {"f": b"x"})
    ok = subprocess.run(
        [GITFREE, "commit", "ds", str(tmp_path / "src"), "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["number"] == 1
    conflict = subprocess.run([GITFREE, "tag", "ds@1", "prod"], capture_output=True, text=True, env=env, timeout=120)
    assert conflict.returncode == 0
    write_tree(tmp_path / "src", {"g": b"y"})
    subprocess.run(
        [GITFREE, "commit", "ds", str(tmp_path / "src")], check=True, capture_output=True, env=env, timeout=120
    )
    conflict = subprocess.run([GITFREE, "tag", "ds@2", "prod"], capture_output=True, text=True, env=env, timeout=120)
    assert conflict.returncode == 4
    assert "--move" in conflict.stderr
