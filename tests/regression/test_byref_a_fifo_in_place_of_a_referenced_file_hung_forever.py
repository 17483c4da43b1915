"""A FIFO put in place of a file of a version by reference (in a shared folder) hung every read of it forever:
the read opened it blocking, waiting for a writer that never comes. So did a commit whose file was replaced by a
FIFO between the folder's walk and its hashing. Now the file is opened without blocking and anything but a
regular file is refused at once: ``IntegrityError`` on a read, ``ConflictError`` on a commit. Found by the
hostile pass over versions by reference (issue 18)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import ConflictError, IntegrityError, Store
from gitfree.versioning import sources


def _unblock(fifo: Path) -> None:
    """Open the FIFO for writing (without blocking, if a reader is there) so a reader stuck in open() returns."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def _within(seconds: float, call: Callable[[], object], fifo: Path) -> BaseException | None:
    """Run ``call`` in a thread; fail if it is still running after ``seconds`` (then unblock it)."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            raised[0] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        _unblock(fifo)
        thread.join(10)
        pytest.fail(f"still blocked after {seconds} s on the FIFO {fifo}")
    return raised[0]


def test_a_read_of_a_file_replaced_by_a_fifo_fails_at_once(make_store: Callable[..., Store], tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"unique a", "b.txt": b"unique b"})
    make_store("file").commit("ds", src, by_reference=True)
    (src / "a.txt").unlink()
    os.mkfifo(src / "a.txt")
    reader = make_store("file")
    raised = _within(10, lambda: reader.open("ds", "a.txt"), src / "a.txt")
    assert isinstance(raised, IntegrityError), raised
    assert "a.txt changed since" in str(raised) and "no longer a regular file" in str(raised)
    raised = _within(10, lambda: reader.pull("ds", tmp_path / "out"), src / "a.txt")
    assert isinstance(raised, IntegrityError), raised
    assert not (tmp_path / "out").exists()
    assert reader.open("ds", "b.txt").read() == b"unique b"


@pytest.fixture
def fifo_after_the_walk(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace each path put in the list by a FIFO right after the source's walk (the race, made certain)."""
    swap: list[Path] = []
    walked = sources.FileSource._listed

    def listed(self: sources.FileSource) -> list[tuple[str, os.stat_result]]:
        found = walked(self)
        for path in swap:
            path.unlink()
            os.mkfifo(path)
        return found

    monkeypatch.setattr(sources.FileSource, "_listed", listed)
    return swap


def test_a_commit_whose_file_becomes_a_fifo_fails_at_once(
    make_store: Callable[..., Store], tmp_path: Path, fifo_after_the_walk: list[Path]
) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"a", "b.txt": b"b"})
    fifo_after_the_walk.append(src / "a.txt")
    store = make_store("file")
    raised = _within(10, lambda: store.commit("ds", src, by_reference=True), src / "a.txt")
    assert isinstance(raised, ConflictError), raised
    assert "a.txt changed while it was imported" in str(raised)
    assert store.datasets() == []
