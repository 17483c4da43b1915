"""Terminal control sequences from a version's data reach the user's terminal as they are.

Anyone who can commit chooses the message, metadata and file names that everyone else's ``gitfree log``,
``show``, ``show --files`` and ``ls`` print. The console is built with ``markup=False`` ("never reads data as
markup"), but ESC sequences are written raw: a message holding ``ESC ] 0 ; title ESC \\`` retitles the
reader's terminal, ``ESC [ 2 J`` clears it, colours and cursor moves can hide or forge lines (``log`` even cuts
a sequence in half with its ellipsis). JSON output escapes them (``\\u001b``); the tables should show them
inert (escaped or replaced), as git does for control characters in paths. Also on 354e05d.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import Store

GITFREE = str(Path(sys.executable).with_name("gitfree"))
ESC = "\x1b"


@pytest.mark.parametrize("args", [["log", "ds"], ["show", "ds"], ["show", "ds", "--files"], ["ls", "ds"]])
def test_control_sequences_in_data_are_not_sent_to_the_terminal(tmp_path: Path, args: list[str]) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    src = write_tree(tmp_path / "src", {f"evil{ESC}[31mRED{ESC}[0m.txt": b"1", "ok.txt": b"2"})
    store.commit("ds", src, message=f"nightly {ESC}]0;pwned{ESC}\\{ESC}[2J", metadata={"k": f"{ESC}[8m"})
    env = {**os.environ, "GITFREE_STORE": str(tmp_path / "store"), "GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([GITFREE, *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ESC not in result.stdout, repr(result.stdout)
