"""``commit(dataset, "")`` (an unset variable, an empty Prefect or Airflow parameter) committed the current
working directory, by upload and by reference alike (``Path("")`` is ``.``): ``ingest_dataset("", ds,
by_reference=True)`` versioned whatever folder the worker ran in. Now an empty path is one ``InputError`` line
(exit code 2) and nothing is written; ``.`` still commits the current directory. Found by the second hostile pass
over issue 18."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import InputError, Store
from gitfree.cli import cli


@pytest.mark.parametrize("by_reference", [True, False], ids=["by-reference", "upload"])
def test_an_empty_path_is_refused_and_dot_is_the_current_directory(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_reference: bool
) -> None:
    monkeypatch.chdir(write_tree(tmp_path / "cwd", {"f.txt": b"whatever the worker ran in"}))
    store = make_store("file")
    with pytest.raises(InputError, match=r"the path to commit is empty"):
        store.commit("ds", "", by_reference=by_reference)
    assert store.datasets() == []
    flag = ["--by-reference"] if by_reference else []
    args = ["--store", store.url, "--cache-dir", str(tmp_path / "c"), "commit", "ds", "", *flag]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "the path to commit is empty" in result.output
    assert store.datasets() == []
    assert store.commit("ds", ".", by_reference=by_reference).nfiles == 1
