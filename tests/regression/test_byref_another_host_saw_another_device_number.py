"""A folder on a network share, committed by reference on one worker, could not be read on another, nor
recommitted there without a new version: the entries named the file's device number, and each NFS client (each
mount, even on the same host after a remount) numbers the share's device its own way, so every read said the
file "was replaced by another file" and every commit re-hashed the folder into a new table. Now a file is the
same when its size, mtime and inode are (the md5 of the bytes read is checked at every read anyway, R1). Found by
the hostile pass over versions by reference (issue 18).

A second NFS client cannot be started here: the test shows ``sources`` the folder through an ``os`` whose stat
results carry another device number, as the other worker's kernel does, and nothing else differs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import write_tree

from gitfree import Store
from gitfree.versioning import sources

_HIDDEN = ("st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize", "st_blocks", "st_rdev")


def _elsewhere(st: os.stat_result) -> os.stat_result:
    fields = list(st[:10])
    fields[2] += 1000  # st_dev: the other client's number for the same share
    return os.stat_result(fields, {name: getattr(st, name) for name in _HIDDEN})


class _Entry:
    def __init__(self, entry: os.DirEntry[str]) -> None:
        self._entry = entry
        self.name = entry.name

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return _elsewhere(self._entry.stat(follow_symlinks=follow_symlinks))


class _Listing:
    def __init__(self, path: Any) -> None:
        self._it = os.scandir(path)

    def __enter__(self) -> Iterator[_Entry]:
        return (_Entry(e) for e in self._it)

    def __exit__(self, *exc: object) -> None:
        self._it.close()


@pytest.fixture
def other_host(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """``other_host()``: from then on, ``sources`` sees every file with another device number."""

    def switch() -> None:
        seen = SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
        seen.stat = lambda path, **kw: _elsewhere(os.stat(path, **kw))
        seen.fstat = lambda fd: _elsewhere(os.fstat(fd))
        seen.scandir = _Listing
        monkeypatch.setattr(sources, "os", seen)

    return switch


def test_another_host_reads_and_recommits_the_same_share(
    make_store: Callable[..., Store], tmp_path: Path, other_host: Callable[[], None]
) -> None:
    share = write_tree(tmp_path / "nfs" / "images", {"a.png": b"png bytes", "d/b.png": b"more png bytes"})
    made = make_store("file").commit("images", share, by_reference=True)
    other_host()
    there = make_store("file")
    assert there.open("images", "d/b.png").read() == b"more png bytes"
    assert there.peek("images", "a.png", 0, 3) == b"png"
    again = there.commit("images", share, by_reference=True)
    assert not again.created and again.number == made.number
    (share / "a.png").write_bytes(b"new png bytes")  # a real change is still one
    assert there.commit("images", share, by_reference=True).number == 2
