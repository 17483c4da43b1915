"""A folder of a version by reference (``src/sub/``) replaced by a file named ``sub``: every read of
``sub/x.txt`` (``open``, ``peek``, ``pull``, ``materialize``, ``gitfree cat``) was "unexpected NotADirectoryError"
with exit code 1, and ``fsck --deep`` called the whole source unreadable, while quick ``fsck`` said the file is
gone. Now the file is gone in every one of them: the drift ``IntegrityError`` naming it (exit code 5), and a drift
line in ``fsck --deep``. Found by the second hostile pass over issue 18."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import IntegrityError, Store
from gitfree.cli import cli

GONE = r"sub/x\.txt changed since it was committed by reference: it no longer exists"


def test_a_file_whose_folder_became_a_file_is_gone_for_every_read(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"sub/x.txt": b"in a folder", "y.txt": b"beside it"})
    store = make_store("file")
    store.commit("ds", src, by_reference=True)
    shutil.rmtree(src / "sub")
    (src / "sub").write_bytes(b"now a file")
    reader = make_store("file")
    for read in (
        lambda: reader.open("ds", "sub/x.txt"),
        lambda: reader.peek("ds", "sub/x.txt"),
        lambda: reader.pull("ds", tmp_path / "out"),
        lambda: reader.materialize("ds"),
    ):
        with pytest.raises(IntegrityError, match=GONE):
            read()
    assert not (tmp_path / "out").exists()
    report = reader.fsck(deep=True)
    assert [(p.kind, p.key) for p in report.problems] == [("drift", f"{src.as_uri()}/sub/x.txt")]
    result = CliRunner().invoke(
        cli, ["--store", store.url, "--cache-dir", str(tmp_path / "c"), "cat", "ds", "sub/x.txt"]
    )
    assert result.exit_code == 5, result.output
    assert result.output.count("\n") == 1 and "no longer exists" in result.output
