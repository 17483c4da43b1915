"""``export`` wrote wherever it was pointed, and failed on a path below a file with an internal error.

- ``gitfree export ds@1 afile/x.dvc`` (``afile`` a regular file): ``error: unexpected FileExistsError: [Errno 17]
  File exists: 'afile' (run with -vv for details)``, exit 1. ``pull`` says the same case clearly (exit 2:
  "is a file, not a folder, so nothing can be written below it").
- ``gitfree export ds@1 <store>/x.dvc`` writes a file into the local store's root (and into the worker cache),
  which ``pull`` refuses "with or without --overwrite": the store then holds a key outside its layout.
- ``export`` over an existing file replaces it without asking (pull asks for --overwrite), and it writes
  through a symbolic link at the target.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import InputError, Store

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITFREE_STORE": str(tmp_path / "store"), "GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([GITFREE, *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


def _committed(tmp_path: Path) -> None:
    Store(tmp_path / "store", cache_dir=tmp_path / "cache").commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))


def test_export_below_a_file_is_bad_input_not_an_unexpected_error(tmp_path: Path) -> None:
    _committed(tmp_path)
    (tmp_path / "afile").write_text("x")
    result = _run(tmp_path, "export", "ds@1", str(tmp_path / "afile" / "x.dvc"))
    assert result.returncode == 2 and "unexpected" not in result.stderr, (result.returncode, result.stderr)


def test_export_never_writes_into_the_store(tmp_path: Path) -> None:
    _committed(tmp_path)
    result = _run(tmp_path, "export", "ds@1", str(tmp_path / "store" / "x.dvc"))
    assert not (tmp_path / "store" / "x.dvc").exists(), result.stdout
    assert result.returncode == 2, result.stderr


def test_export_does_not_write_through_a_link(tmp_path: Path) -> None:
    _committed(tmp_path)
    (tmp_path / "precious.txt").write_text("mine")
    os.symlink(tmp_path / "precious.txt", tmp_path / "x.dvc")
    result = _run(tmp_path, "export", "ds@1", str(tmp_path / "x.dvc"))
    assert (tmp_path / "precious.txt").read_text() == "mine"
    assert result.returncode == 2 and "symbolic link" in result.stderr, result.stderr


def test_export_never_writes_into_the_worker_cache(tmp_path: Path) -> None:
    _committed(tmp_path)
    result = _run(tmp_path, "export", "ds@1", str(tmp_path / "cache" / "x.dvc"))
    assert not (tmp_path / "cache" / "x.dvc").exists(), result.stdout
    assert result.returncode == 2 and "worker cache" in result.stderr, result.stderr


def test_the_python_api_refuses_the_store_as_the_cli_does(tmp_path: Path) -> None:
    _committed(tmp_path)
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    with pytest.raises(InputError, match="inside the store"):
        store.export_dvc("ds@1", tmp_path / "store" / "sub" / "x.dvc")
    assert not (tmp_path / "store" / "sub").exists()


def test_export_over_its_own_pointer_moves_it_on(tmp_path: Path) -> None:
    _committed(tmp_path)
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src2", {"a": b"2"}))
    target = store.export_dvc("ds@1", tmp_path / "ds.dvc")
    assert "ds@1" in target.read_text()
    assert store.export_dvc("ds@2", target) == target and "ds@2" in target.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
