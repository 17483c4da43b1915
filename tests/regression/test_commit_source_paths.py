"""What a commit accepts, every reader can read; and nothing in a source makes a commit hang.

Issue "Trust", item 4: a file named ``back\\slash.txt`` committed fine and made the whole version
unreadable (``show --files``, ``pull``, even ``cat`` of another file exit 7, because every reader
applies ``checkout.validate_path``). A FIFO in the source hung ``commit`` forever; sockets and
devices ended it with an unexpected OSError. Now the commit applies the readers' rules to every path
of the source and refuses special files and broken links by name, before anything is hashed into
the worker cache or uploaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path

import fsspec
import pytest
from helpers import read_tree, write_tree

from gitfree import InputError, Store, Version

GITFREE = str(Path(sys.executable).with_name("gitfree"))
GOOD = {"ok.txt": b"fine", "sub/also.txt": b"fine too"}


def _source(root: Path, hostile: bytes | None = None, in_sub: bool = False) -> Path:
    """A source with good files and one file whose name is ``hostile`` (raw bytes, any the OS allows)."""
    src = write_tree(root, GOOD)
    if hostile is not None:
        folder = os.fsencode(root / "sub" if in_sub else root)
        with open(os.path.join(folder, hostile), "wb") as f:
            f.write(b"hostile")
    return src


def _nothing_written(store: Store) -> None:
    """Nothing hashed into the worker cache, nothing uploaded, no version."""
    objects = store.cache_dir / "files"
    assert not objects.exists() or not [p for p in objects.rglob("*") if p.is_file()]
    assert not list(store.backend.list("files/"))
    assert store.datasets() == []


@pytest.mark.parametrize(
    ("name", "said", "in_sub"),
    [
        (b"back\\slash.txt", "contains a backslash", False),
        (b"back\\slash.txt", "contains a backslash", True),
        (b"c:data.txt", "Windows drive", False),  # deeper in a path it is readable: see the next test
        (b"bad\xff\xfe.txt", "not valid UTF-8", False),
        (b"bad\xff\xfe.txt", "not valid UTF-8", True),
    ],
    ids=["backslash-top", "backslash-nested", "drive-letter-top", "not-utf8-top", "not-utf8-nested"],
)
def test_a_name_no_reader_accepts_is_refused_by_name_before_anything_is_hashed(
    store: Store, tmp_path: Path, name: bytes, said: str, in_sub: bool
) -> None:
    src = _source(tmp_path / "src", name, in_sub)
    shown = os.fsdecode(name)
    with pytest.raises(InputError, match=said) as caught:
        store.commit("ds", src)
    assert repr(f"sub/{shown}" if in_sub else shown) in str(caught.value)  # the offending path, named
    _nothing_written(store)


def test_a_colon_after_a_letter_deeper_in_a_path_is_readable_and_accepted(store: Store, tmp_path: Path) -> None:
    """Not a regression: the guard that the drive rule refuses only what readers refuse."""
    version = store.commit("ds", _source(tmp_path / "src", b"c:data.txt", in_sub=True))
    store.pull(version, tmp_path / "out")
    assert read_tree(tmp_path / "out")["sub/c:data.txt"] == b"hostile"


def test_the_issue_case_every_reader_of_the_version_would_have_failed(store: Store, tmp_path: Path) -> None:
    """The exact report: ``back\\slash.txt`` beside good files; the commit now refuses, naming it."""
    src = _source(tmp_path / "src", b"back\\slash.txt")
    with pytest.raises(InputError, match=r"'back\\\\slash.txt' contains a backslash"):
        store.commit("ds", src)
    _nothing_written(store)
    (src / "back\\slash.txt").rename(src / "back-slash.txt")
    version = store.commit("ds", src)
    assert store.pull(version, tmp_path / "out") == tmp_path / "out"
    assert read_tree(tmp_path / "out") == read_tree(src)


@pytest.mark.parametrize("name", [b"back\\slash.bin", b"c:model.bin", b"w\xe9ights.bin"], ids=["bs", "drive", "latin1"])
def test_a_single_file_whose_name_no_reader_accepts_is_refused(store: Store, tmp_path: Path, name: bytes) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    path = os.path.join(os.fsencode(folder), name)
    with open(path, "wb") as f:
        f.write(b"weights")
    with pytest.raises(InputError, match="its name"):
        store.commit("model", os.fsdecode(path))
    _nothing_written(store)


def test_a_directory_whose_own_name_cannot_be_a_version_path_is_refused(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "back\\slash", GOOD)
    with pytest.raises(InputError, match="its name"):
        store.commit("ds", src)
    with pytest.raises(InputError, match=r"its name '\.\.'"):
        store.commit("ds", src / "sub" / "..")
    _nothing_written(store)


# ------------------------------------------------------------------------------------ special files


def _socket(path: Path) -> Callable[[], None]:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock.close


@pytest.mark.parametrize("kind", ["socket", "char-device", "link-to-device"])
def test_special_files_are_refused_by_name(store: Store, tmp_path: Path, kind: str) -> None:
    src = _source(tmp_path / "src")
    special = src / "sub" / "special"
    close: Callable[[], None] = lambda: None  # noqa: E731
    if kind == "socket":
        close = _socket(special)
        said = "is a socket"
    elif kind == "char-device":
        try:
            os.mknod(special, 0o600 | 0o020000, os.makedev(1, 3))  # like /dev/null
        except PermissionError:
            pytest.skip("creating a device node needs root")
        said = "is a character device"
    else:
        special.symlink_to("/dev/null")
        said = "symbolic link to '/dev/null', which is a character device"
    try:
        with pytest.raises(InputError, match=said) as caught:
            store.commit("ds", src)
    finally:
        close()
    assert "'sub/special'" in str(caught.value)
    _nothing_written(store)


def _commit_unless_it_hangs(store: Store, src: Path, fifo: Path) -> BaseException | Version:
    """Commit ``src`` in a thread; if it is still running after 30 s (blocked opening ``fifo``, as the old
    code was), release it (a writer opens the FIFO, then EOF) and fail: the commit hung."""
    outcome: list[BaseException | Version] = []

    def commit() -> None:
        try:
            outcome.append(store.commit("ds", src))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=commit, daemon=True)
    worker.start()
    worker.join(30)
    hung = worker.is_alive()
    while worker.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(0.2)
    assert not hung, "commit hung on a FIFO in the source"
    [result] = outcome
    return result


@pytest.mark.timeout(120)
@pytest.mark.parametrize("linked", [False, True], ids=["fifo", "link-to-fifo"])
def test_a_fifo_is_refused_at_once_instead_of_hanging_the_commit(store: Store, tmp_path: Path, linked: bool) -> None:
    src = _source(tmp_path / "src")
    fifo = tmp_path / "pipe" if linked else src / "sub" / "pipe"
    os.mkfifo(fifo)
    if linked:
        (src / "sub" / "pipe").symlink_to(fifo)
    result = _commit_unless_it_hangs(store, src, fifo)
    assert isinstance(result, InputError), result
    assert "'sub/pipe' is " + ("a symbolic link to" if linked else "a FIFO (named pipe)") in str(result)
    assert "FIFO" in str(result)
    _nothing_written(store)


# ------------------------------------------------------------------------------------ symbolic links


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (
            lambda src: (src / "dangling").symlink_to("nowhere"),
            "'dangling' is a symbolic link to 'nowhere', which does not exist",
        ),
        (lambda src: (src / "self").symlink_to("self"), "'self' is a symbolic link that never reaches a file (a loop"),
        (
            lambda src: ((src / "a").symlink_to("b"), (src / "b").symlink_to("a")),
            "is a symbolic link that never reaches a file (a loop",
        ),
        (lambda src: (src / "sub" / "up").symlink_to(".."), "'sub/up' is a symbolic link to a directory ('..')"),
        (lambda src: (src / "linked").symlink_to("sub"), "'linked' is a symbolic link to a directory ('sub')"),
    ],
    ids=["dangling", "self-loop", "two-link-loop", "dir-loop", "linked-dir"],
)
def test_links_that_reach_no_file_are_refused_by_name(
    store: Store, tmp_path: Path, make: Callable[[Path], object], said: str
) -> None:
    """DVC follows a link to a file (kept); a dangling or looping one has no content, and a linked
    directory is one ``dvc add`` silently leaves out (checked in test_dvcignore_matches_dvc_add.py):
    refused by name rather than committed without its files."""
    src = _source(tmp_path / "src")
    make(src)
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)")):
        store.commit("ds", src)
    _nothing_written(store)


def test_a_link_to_a_file_is_followed_as_dvc_follows_it(store: Store, tmp_path: Path) -> None:
    """Not a regression (the old code did this too): the guard that refusing links kept DVC's behaviour."""
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"a,b\n")
    src = _source(tmp_path / "src")
    (src / "linked.csv").symlink_to(outside)
    version = store.commit("ds", src)
    store.pull(version, tmp_path / "out")
    assert read_tree(tmp_path / "out") == {**GOOD, "linked.csv": b"a,b\n"}
    assert not (tmp_path / "out" / "linked.csv").is_symlink()


# ------------------------------------------------------------------------------------ what is accepted


ODD_BUT_READABLE = [
    "new\nline.txt",
    "carriage\rreturn",
    "tab\there",
    "...",
    "..hidden",
    "trailing..",
    " leading and trailing ",
    "-rf",
    "--help",
    "caf\u00e9-\u2603-\U0001f600.txt",
    unicodedata.normalize("NFD", "cafe\u0301-nfd.txt"),
    "del\x7f-esc\x1b[31m-bell\x07",
    "x" * 255,
    "per%cent&amp;*?[glob]{a,b}@1#frag",
    "sub/deeper/" + "y" * 200,
]


def test_odd_names_every_reader_can_read_are_committed_and_read_back(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """Not a regression: the guard that the rules refuse only what readers cannot read. Newlines, control
    characters, ``...``, leading dashes, any Unicode and 255-byte names are read back by every reader:
    ``files``, ``pull``, ``open``, the CLI (``show --files --json``, ``cat``, ``ls --json``) and ``gitfree://``."""
    store = make_store("file")
    files = {name: f"content of {name!r}".encode() for name in ODD_BUT_READABLE}
    src = write_tree(tmp_path / "src", files)
    version = store.commit("odd", src)
    assert {e.path for e in store.files(version)} == set(files)
    store.pull(version, tmp_path / "out")
    assert read_tree(tmp_path / "out") == files
    for name, data in files.items():
        with store.open(version, name) as f:
            assert f.read() == data

    env = {**os.environ, "GITFREE_STORE": store.url, "GITFREE_CACHE_DIR": str(tmp_path / "cli-cache")}

    def cli(*args: str) -> bytes:
        result = subprocess.run([GITFREE, *args], env=env, capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout

    shown = json.loads(cli("show", "--files", "--json", "odd@1"))
    assert {f["path"] for f in shown["files"]} == set(files)
    listed = json.loads(cli("ls", "--json", "odd@1", "sub/deeper/"))
    assert [entry["name"] for entry in listed] == ["y" * 200]
    for name, data in files.items():
        assert cli("cat", "--", "odd@1", name) == data  # "--": a name may start with a dash

    fs = fsspec.filesystem("gitfree", store=store.url, cache_dir=str(tmp_path / "fs-cache"))
    for name, data in files.items():
        with fs.open(f"odd@1/{name}", "rb") as f:
            assert f.read() == data
