"""Pulling a single-file version to ``newdir/`` (a folder that does not exist yet) makes a *file* named newdir.

``gitfree pull model@1 out/`` with ``out`` missing writes the model's bytes to a file called ``out``; with
``out`` an existing folder it writes ``out/model.bin``. The trailing slash says "a folder" (``cp``
refuses with "Not a directory", ``rsync`` makes the folder); gitfree drops it silently, so the next step's
``out/model.bin`` is not there and ``out`` is a file.
"""

from __future__ import annotations

from pathlib import Path

from helpers import write_tree

from gitfree import Store


def test_a_trailing_slash_names_a_folder(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("model", write_tree(tmp_path / "src", {"model.bin": b"weights"}) / "model.bin")
    target = store.pull("model@1", f"{tmp_path / 'out'}/")
    assert (tmp_path / "out").is_dir() and target == tmp_path / "out" / "model.bin", target
