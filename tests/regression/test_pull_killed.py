"""A pull killed with SIGKILL leaves nothing behind for long: the next pull beside its destination
removes its staging (and puts back a destination it had moved aside), never that of a running pull.
A killed update leaves each path with the old file or the new one, and the next pull finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import Store

# The pull runs in a child process that stops at one point (``hook``) until told to go on, or is killed.
CHILD = r"""
import os, sys, time
from pathlib import Path

store_url, cache, ref, dest, hook, signals, overwrite = sys.argv[1:]
signals = Path(signals)
import gitfree.versioning.checkout as checkout
from gitfree import Store
print("gitfree from", checkout.__file__, file=sys.stderr)

def pause():
    (signals / "ready").touch()
    while not (signals / "go").exists():
        time.sleep(0.02)

seen = {"n": 0}
if hook == "copy":  # after the first file is staged
    for name in ("copy_file", "_copy_verified"):
        real = getattr(checkout, name)
        def staged(*args, _real=real):
            _real(*args)
            seen["n"] += 1
            if seen["n"] == 1:
                pause()
        setattr(checkout, name, staged)
elif hook == "aside":  # once the destination is moved aside, before the new version is moved in
    real_rename = os.rename
    def rename(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        if os.fspath(src) == dest:
            pause()
    os.rename = rename
elif hook == "replace":  # after the first file renamed into the destination
    real_replace = os.replace
    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if os.fspath(dst).startswith(dest + "/"):
            seen["n"] += 1
            if seen["n"] == 1:
                pause()
    os.replace = replace

Store(store_url, cache_dir=cache).pull(ref, dest, overwrite=overwrite == "1")
"""


class Child:
    def __init__(self, store: Store, ref: str, dest: Path, hook: str, signals: Path, overwrite: bool = False):
        signals.mkdir(parents=True, exist_ok=True)
        self.signals = signals
        args = [store.url, str(store.cache_dir), ref, str(dest), hook, str(signals), "1" if overwrite else "0"]
        # Run from the signals folder: ``-c`` puts the working directory first on sys.path.
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], stderr=subprocess.PIPE, cwd=signals)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (self.signals / "ready").exists():
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                pytest.fail(f"the pull ended (exit {self.proc.returncode}) before the hook: {err.decode()[-600:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail("the pull never reached the hook")
            time.sleep(0.02)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def go(self) -> int:
        (self.signals / "go").touch()
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err.decode()[-600:]
        return self.proc.returncode


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".gitfree"))


FILES = {f"d{i % 3}/f{i:03d}.bin": os.urandom(2048) + bytes([i]) for i in range(30)}


@pytest.fixture
def local(make_store: Callable[..., Store], tmp_path: Path) -> Store:
    store = make_store("file")
    store.commit("ds", write_tree(tmp_path / "src", FILES))
    return store


def test_staging_of_a_pull_killed_mid_copy_is_removed_by_the_next_pull(
    local: Store, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    parent = tmp_path / "work"
    parent.mkdir()
    child = Child(make_store("file"), "ds@1", parent / "dest", "copy", tmp_path / "sig")
    child.wait_ready()
    child.kill()
    assert _leftovers(parent), "the killed pull left its staging"
    assert read_tree(local.pull("ds@1", parent / "dest")) == FILES
    assert _leftovers(parent) == []


def test_a_destination_moved_aside_by_a_killed_pull_is_put_back(
    local: Store, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    parent = tmp_path / "work"
    mine = write_tree(parent / "dest", {"mine.txt": b"precious"})
    child = Child(make_store("file"), "ds@1", mine, "aside", tmp_path / "sig", overwrite=True)
    child.wait_ready()
    child.kill()
    assert not mine.exists() and _leftovers(parent)
    # Any pull beside it (here into a sibling) finds the dead pull and undoes it.
    assert read_tree(local.pull("ds@1", parent / "other")) == FILES
    assert read_tree(mine) == {"mine.txt": b"precious"}
    assert _leftovers(parent) == []


def test_a_running_pull_beside_is_left_alone(local: Store, make_store: Callable[..., Store], tmp_path: Path) -> None:
    parent = tmp_path / "work"
    parent.mkdir()
    child = Child(make_store("file"), "ds@1", parent / "a", "copy", tmp_path / "sig")
    child.wait_ready()
    staging = _leftovers(parent)
    try:
        assert read_tree(local.pull("ds@1", parent / "b")) == FILES
        assert _leftovers(parent) == staging  # the running pull's staging and lock are untouched
    finally:
        child.go()
    assert read_tree(parent / "a") == FILES
    assert _leftovers(parent) == []


def test_an_update_killed_half_way_leaves_whole_files_and_is_finished_by_the_next_pull(
    local: Store, tmp_path: Path
) -> None:
    v2 = {p: (data[::-1] if i % 2 else data) for i, (p, data) in enumerate(sorted(FILES.items()))}
    v2["new.txt"] = b"added"
    local.commit("ds", write_tree(tmp_path / "src2", v2))
    dest = local.pull("ds@1", tmp_path / "dest")
    child = Child(local, "ds@2", dest, "replace", tmp_path / "sig")
    child.wait_ready()
    child.kill()
    now = read_tree(dest)
    assert now != FILES and now != v2  # half way
    for path, data in now.items():
        assert data in (FILES.get(path), v2.get(path)), path  # each path: the old file or the new one
    assert read_tree(local.pull("ds@2", dest)) == v2  # no overwrite needed
    assert _leftovers(tmp_path) == []
