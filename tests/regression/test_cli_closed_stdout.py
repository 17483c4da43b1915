"""A reader that stops reading (``gitfree cat ... | head -c 10``) ends gitfree quietly, as git and coreutils.

Regression: ``cat`` into a closed pipe printed "error: unexpected BrokenPipeError" and exited 1;
``show --files | head`` exited 1; a short output into a closed pipe left "Exception ignored ...
BrokenPipeError" at interpreter shutdown. Now: exit 141 (128 + SIGPIPE, what a shell reports for
git or cat), nothing on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_tree

GITFREE = str(Path(sys.executable).with_name("gitfree"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        **os.environ,
        "HOME": str(tmp_path),
        "GITFREE_STORE": str(tmp_path / "store"),
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
    }
    files = {f"many/f{i:04d}.txt": b"%d" % i for i in range(2000)}  # a listing far larger than a pipe buffer
    files["big.bin"] = os.urandom(4 << 20)
    subprocess.run(
        [GITFREE, "commit", "ds", str(write_tree(tmp_path / "src", files))],
        env=environment,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return environment


def _into_closed_pipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run gitfree with stdout a pipe whose reader has already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([GITFREE, *args], stdout=write, stderr=subprocess.PIPE, env=env, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args",
    [
        ["cat", "ds", "big.bin"],
        ["show", "ds", "--files"],
        ["show", "ds", "--files", "--json"],
        ["ls", "ds", "many"],
        ["datasets"],  # a short output: fails only at the final flush
        ["tags", "ds", "--json"],
    ],
)
def test_a_closed_stdout_ends_quietly_with_141(env: dict[str, str], args: list[str]) -> None:
    result = _into_closed_pipe(env, *args)
    assert result.stderr == b"", result.stderr.decode(errors="replace")
    assert result.returncode == 141


def test_head_reads_a_little_and_goes(env: dict[str, str]) -> None:
    """The real thing: a reader that takes 10 bytes and closes, while gitfree is still writing."""
    process = subprocess.Popen(
        [GITFREE, "cat", "ds", "big.bin"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout is not None and process.stderr is not None
    assert len(process.stdout.read(10)) == 10
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141
    assert stderr == b"", stderr.decode(errors="replace")
