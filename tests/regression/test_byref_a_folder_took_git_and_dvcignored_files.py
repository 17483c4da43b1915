"""A commit by reference of a folder took every file in it: ``.git/`` (whose ``index`` git rewrites at every
``git status``, so each such version soon failed its reads for drift and no import was ever a no-op), the files
its ``.dvcignore`` leaves out, and the ``.dvcignore`` itself, where a commit by upload of the same folder (DVC's
ignore filter, as ``dvc add``) takes none of them: the same folder made two different listings. Now the walk of a
folder source applies the same rules. Found by the hostile pass over versions by reference (issue 18)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import write_tree

from gitfree import Store


def test_a_folder_by_reference_takes_what_an_upload_takes(make_store: Callable[..., Store], tmp_path: Path) -> None:
    src = write_tree(
        tmp_path / "work",
        {
            "a.csv": b"x,y\n",
            "d/b.txt": b"b",
            ".dvcignore": b"logs/\n*.tmp\n",
            "logs/run.log": b"noise",
            "d/scratch.tmp": b"noise",
            ".git/index": b"git's own",
            ".git/HEAD": b"ref: refs/heads/main\n",
        },
    )
    store = make_store("file")
    uploaded = store.commit("up", src)
    referenced = store.commit("ref", src, by_reference=True)
    assert [e.path for e in store.files(referenced)] == ["a.csv", "d/b.txt"]
    assert referenced.md5 == uploaded.md5
    (src / ".git" / "index").write_bytes(b"git rewrote it")
    (src / "logs" / "run.log").write_bytes(b"more noise")
    assert not store.commit("ref", src, by_reference=True).created
    assert make_store("file").open("ref", "a.csv").read() == b"x,y\n"
