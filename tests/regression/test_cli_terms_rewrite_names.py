"""``in_cli_terms`` rewrites the user's data, not only the option it names.

``GitfreeError.in_cli_terms`` does ``str.replace`` of each Python term over the whole message, in order. The
message of ``cat`` of a folder pairs ("open one of", "cat one of") and ("paths=['<folder>']", "--path <folder>").
A folder named ``open one of`` (any name holding a Python term) is then renamed in the message, and because the
first replacement changed the text the second no longer matches, so the CLI prints the Python spelling with the
wrong folder: ``error: cat one of is a folder of ds@1: cat one of its files (x), or pull it with
paths=['cat one of']``. It should name the folder as it is and say ``--path 'open one of'`` (issue 14's
"messages in CLI terms"; new with the split).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import write_tree

from gitfree import Store

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def test_a_folder_named_like_a_python_term_is_named_as_it_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src", {"open one of/x": b"1", "y": b"2"}))
    env = {**os.environ, "GITFREE_STORE": str(tmp_path / "store"), "GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([GITFREE, "cat", "ds", "open one of"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: open one of is a folder of ds@1"), line
    assert "--path 'open one of'" in line and "paths=" not in line, line
