"""The CLI says what to do in its own terms; the API in Python's. One message, translated at the boundary.

Regressions: ``gitfree pull`` over other data said "pass overwrite=True (--overwrite)" (both, in every
interface), and a destination the pull refuses said "with or without --overwrite" to Python callers;
``gitfree tag`` of a tag that exists said "pass move=True (--move)"; ``gitfree cat images@3`` of a
directory version said "open one of its files ()", with nothing inside, and of a folder "or pull it
with paths=".
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import ConflictError, GitfreeError, InputError, Store

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def _gitfree(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GITFREE_STORE": str(tmp_path / "store"),
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
    }
    return subprocess.run([GITFREE, *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


def _error(result: subprocess.CompletedProcess[str], code: int) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == code and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_an_error_names_its_options_in_python_and_says_them_in_cli_terms() -> None:
    error = ConflictError(
        "tag ds@prod already points at version 1; pass move=True to move it", options=(("move=True", "--move"),)
    )
    assert str(error) == "tag ds@prod already points at version 1; pass move=True to move it"
    assert error.in_cli_terms() == "tag ds@prod already points at version 1; pass --move to move it"
    assert GitfreeError("plain").in_cli_terms() == "plain" and GitfreeError("plain").options == ()
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  # a task's error crosses processes (Prefect, Airflow)
    assert type(copy) is ConflictError and copy.in_cli_terms() == error.in_cli_terms()


def test_pull_over_other_data_says_overwrite_in_each_ones_terms(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src", {"a.txt": b"1"}))
    write_tree(tmp_path / "dest", {"mine.txt": b"not gitfree's"})
    with pytest.raises(InputError, match="holds other data") as caught:
        store.pull("ds", tmp_path / "dest")
    assert "pass overwrite=True to replace it" in str(caught.value) and "--overwrite" not in str(caught.value)

    line = _error(_gitfree(tmp_path, "pull", "ds", str(tmp_path / "dest")), 2)
    assert "holds other data; pass --overwrite to replace it" in line and "overwrite=True" not in line


def test_a_refused_destination_says_overwrite_in_each_ones_terms(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src", {"a.txt": b"1"}))
    with pytest.raises(InputError, match="with or without overwrite=True") as caught:
        store.pull("ds", tmp_path / "cache", overwrite=True)
    assert "--overwrite" not in str(caught.value)

    line = _error(_gitfree(tmp_path, "pull", "ds", str(tmp_path / "cache"), "--overwrite"), 2)
    assert "with or without --overwrite" in line and "overwrite=True" not in line


def test_cat_of_a_directory_version_says_what_it_holds(tmp_path: Path) -> None:
    _gitfree(tmp_path, "commit", "images", str(write_tree(tmp_path / "src", {"a.txt": b"1", "labels/b.csv": b"2"})))
    line = _error(_gitfree(tmp_path, "cat", "images@1"), 2)
    assert "()" not in line
    assert "(a.txt, labels/)" in line


def test_a_tag_that_exists_says_move_in_each_ones_terms(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src", {"a.txt": b"1"}))
    store.commit("ds", write_tree(tmp_path / "src", {"a.txt": b"2"}))
    store.tag("ds@1", "prod")
    with pytest.raises(ConflictError) as caught:
        store.tag("ds@2", "prod")
    assert "pass move=True to move it" in str(caught.value) and "--move" not in str(caught.value)

    line = _error(_gitfree(tmp_path, "tag", "ds@2", "prod"), 4)
    assert "pass --move to move it" in line and "move=True" not in line


def test_cat_of_a_folder_says_the_pull_option_in_cli_terms(tmp_path: Path) -> None:
    _gitfree(tmp_path, "commit", "images", str(write_tree(tmp_path / "src", {"a.txt": b"1", "labels/b.csv": b"2"})))
    line = _error(_gitfree(tmp_path, "cat", "images@1", "labels"), 2)
    assert "(b.csv)" in line and "--path labels" in line and "paths=" not in line
