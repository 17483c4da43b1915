"""``GITFREE_CACHE_DIR=`` (set, empty) makes the current directory the worker cache.

``StoreSettings._empty_is_unset`` treats an empty ``store``, ``endpoint_url``, ``access_key_id``, ``region`` and
``profile`` as unset, but not ``cache_dir``: ``Path("")`` is ``.``, so an empty GITFREE_CACHE_DIR (an
``export GITFREE_CACHE_DIR=$CACHE`` with CACHE unset, a compose file's ``GITFREE_CACHE_DIR:``) or
``Store(cache_dir="")`` puts ``files/``, ``state/`` and ``pulls/`` into whatever directory the command runs in
(seen: ``cd /tmp/x && GITFREE_CACHE_DIR= gitfree pull ds@1 /tmp/dest`` created /tmp/x/files, /tmp/x/state and
/tmp/x/pulls), and a commit of anything under the working directory is refused as "inside the worker cache".
The same bug was fixed for the Prefect block (test_block_empty_cache_dir_was_the_working_directory.py) only
through ``StoreSettings.from_aws``; ``GITFREE_STORE=`` already means the default store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import Store
from gitfree.versioning.config import StoreSettings

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def test_an_empty_cache_dir_setting_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert StoreSettings(cache_dir="").resolved_cache_dir() != work
    monkeypatch.setenv("GITFREE_CACHE_DIR", "")
    assert StoreSettings().resolved_cache_dir() != work


def test_the_cli_with_an_empty_cache_dir_writes_nothing_into_the_working_directory(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "GITFREE_STORE": str(tmp_path / "store"), "GITFREE_CACHE_DIR": "", "HOME": str(tmp_path)}
    result = subprocess.run(
        [GITFREE, "pull", "ds", str(tmp_path / "dest")], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in work.iterdir()) == [], "the pull used the working directory as its cache"
