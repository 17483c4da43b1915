"""A directory where the worker cache keeps a version's ``.dir`` listing: every read fails with an internal error.

``Objects.listing`` reads the cached listing and suppresses only ``FileNotFoundError``; a corrupted copy is
deleted and the store's read instead. A directory at that path (a half-restored cache, a bad rsync) raises
``IsADirectoryError`` out of ``files``, ``pull``, ``ls``, ``show --files`` and ``diff``: the CLI says
``error: unexpected IsADirectoryError: [Errno 21] Is a directory: '.../files/md5/e9/....dir'``, exit 1, for
what the store can answer (the listing is intact there).
"""

from __future__ import annotations

from pathlib import Path

from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.versioning import layout


def test_a_directory_in_place_of_a_cached_listing_is_stepped_over(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    files = {"a.txt": b"A", "d/b.txt": b"B"}
    version = store.commit("ds", write_tree(tmp_path / "src", files))
    cached = tmp_path / "cache" / layout.object_key(version.md5)
    cached.unlink()
    cached.mkdir()
    assert [e.path for e in store.files("ds@1")] == ["a.txt", "d/b.txt"]
    assert read_tree(store.pull("ds@1", tmp_path / "out")) == files
