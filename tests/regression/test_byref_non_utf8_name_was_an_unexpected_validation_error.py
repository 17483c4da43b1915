"""A local source holding a file name that is not valid UTF-8 ended a commit by reference with "unexpected
ValidationError" (exit 1, pydantic's text) instead of one line saying which name to rename (exit 2), as a commit
by upload of the same folder does. Found by the hostile pass over versions by reference (issue 18)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="APFS refuses names that are not UTF-8")


def test_a_name_that_is_not_utf8_is_one_line_and_nothing_is_written(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_bytes(b"ok")
    with open(os.path.join(os.fsencode(src), b"bad\xff.txt"), "wb") as f:
        f.write(b"x")
    store = make_store("file")
    args = ["--store", store.url, "--cache-dir", str(store.cache_dir)]
    result = CliRunner().invoke(cli, [*args, "commit", "ds", str(src), "--by-reference"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert "not valid UTF-8" in result.output and "b'bad\\xff.txt'" in result.output
    assert "ValidationError" not in result.output
    assert store.datasets() == []
