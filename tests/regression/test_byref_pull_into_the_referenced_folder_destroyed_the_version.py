"""A pull with overwrite into the folder a version by reference names replaced its files, their only copy.

Found by the hostile pass over versions by reference (issue 18): ``pull ds@1 SRC --overwrite``, where SRC is the
folder ``ds@2`` (the newest) is by reference of, deleted the file only ds@2 had and replaced the others with new
inodes, so ds@2 could never be read again (``IntegrityError``: "no longer exists", "replaced by another file").
Now the pull refuses in one line, without writing, while the version is not materialised.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import read_tree, write_tree

from gitfree import InputError, Store
from gitfree.cli import cli


def test_a_pull_into_around_or_inside_a_referenced_folder_is_refused(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "shared" / "src", {"a.txt": b"a", "d/b.txt": b"b"})
    store = make_store("file")
    store.commit("ds", src, by_reference=True)
    (src / "new.txt").write_bytes(b"only ds@2 has me")
    assert store.commit("ds", src, by_reference=True).number == 2
    before = {p: p.stat().st_ino for p in src.rglob("*")}
    for dest in (src, src.parent, src / "d"):  # it is, holds or lies inside the source
        for ref in ("ds@1", "ds@2"):
            with pytest.raises(InputError, match=r"versioned by reference from.*materialize"):
                store.pull(ref, dest, overwrite=True)
    assert {p: p.stat().st_ino for p in src.rglob("*")} == before
    reader = make_store("file")  # a worker with an empty cache still reads ds@2 from its source
    assert reader.open("ds@2", "new.txt").read() == b"only ds@2 has me"
    assert reader.pull("ds@1", tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert read_tree(tmp_path / "elsewhere") == {"a.txt": b"a", "d/b.txt": b"b"}


def test_the_cli_says_it_in_one_line_and_a_materialized_version_may_go_back(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "shared" / "src", {"a.txt": b"a"})
    store = make_store("file")
    store.commit("ds", src, by_reference=True)
    args = ["--store", store.url, "--cache-dir", str(store.cache_dir)]
    result = CliRunner().invoke(cli, [*args, "pull", "ds", str(src), "--overwrite"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "gitfree materialize ds@1" in result.output
    assert read_tree(src) == {"a.txt": b"a"}
    store.materialize("ds")  # its files are in the store now: the folder may be restored from it
    (src / "a.txt").write_bytes(b"changed by accident")
    store.pull("ds", src, overwrite=True)
    assert read_tree(src) == {"a.txt": b"a"}


def test_an_uploaded_version_is_not_pulled_over_the_folder_of_the_newest(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    store = make_store("file")
    store.commit("ds", write_tree(tmp_path / "upload", {"a.txt": b"old"}))  # ds@1: uploaded
    src = write_tree(tmp_path / "shared" / "src", {"a.txt": b"new"})
    store.commit("ds", src, by_reference=True)  # ds@2: by reference of src
    with pytest.raises(InputError, match=r"the folder ds@2 is versioned by reference from"):
        store.pull("ds@1", src, overwrite=True)
    assert read_tree(src) == {"a.txt": b"new"}
    assert make_store("file").open("ds@2", "a.txt").read() == b"new"
