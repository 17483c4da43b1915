"""A typo never passes (issue: ``gitfree fsck --deep nosuch`` said "no problems", exit 0, and ``gitfree tags
nosuch`` printed an empty table; a ``--store`` pointing at a data folder was silently filled)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import read_tree, write_tree

from gitfree import ConfigError, NotFoundError, Store
from gitfree.cli import cli


def test_misspelt_dataset_names_exit_3_with_the_names_that_exist(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("images", write_tree(tmp_path / "src", {"f": b"1"}))
    with pytest.raises(NotFoundError, match=r"'imagse' does not exist .* images"):
        store.fsck(datasets=["imagse"])
    with pytest.raises(NotFoundError, match=r"'imagse' does not exist .* images"):
        store.tags("imagse")
    args = ["--store", str(tmp_path / "store"), "--cache-dir", str(tmp_path / "cache")]
    for command in (["fsck", "--deep", "imagse"], ["fsck", "images", "imagse"], ["tags", "imagse"]):
        result = CliRunner().invoke(cli, [*args, *command])
        assert result.exit_code == 3, (command, result.output)
        assert "images" in result.output
    assert CliRunner().invoke(cli, [*args, "tags", "images"]).exit_code == 0


def test_a_data_folder_is_not_taken_for_a_store(tmp_path: Path) -> None:
    data = write_tree(tmp_path / "data", {"train.csv": b"a,b\n1,2\n", "notes/readme.txt": b"mine"})
    before = read_tree(data)
    store = Store(data, cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"holds other data .* not a gitfree store"):
        store.commit("ds", write_tree(tmp_path / "src", {"f": b"1"}))
    assert read_tree(data) == before and sorted(p.name for p in data.iterdir()) == ["notes", "train.csv"]
    # An empty folder, an existing store, or a DVC remote's layout are fine.
    assert Store(tmp_path / "empty", cache_dir=tmp_path / "cache").commit("ds", tmp_path / "src").number == 1
    dvc_remote = write_tree(tmp_path / "remote", {"files/md5/00/" + "1" * 30: b"x"})
    assert Store(dvc_remote, cache_dir=tmp_path / "cache").commit("ds", tmp_path / "src").number == 1
