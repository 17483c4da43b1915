"""``commit`` takes from a folder exactly what ``dvc add`` takes: the same ``.dir`` md5 as the real DVC.

Issue "Trust", also broken: the same folder gave gitfree 15 files and ``dvc add`` 14 (12 with a
``.dvcignore``): gitfree committed ``.git/`` and ignored ``.dvcignore``. Now the commit walks with
DVC's own ignore filter (``dvc.ignore.DvcIgnoreFilter``, handed to dvc-data's ``build``), rooted at
the DVC repository the folder lies in, else at the folder itself. DVC refuses to add a folder that
holds a ``.dvcignore`` ("should not be in collected dir path"), so no DVC listing ever has one:
gitfree follows the rules of one inside the folder and leaves the file out.

Every expected md5 here comes from the real ``dvc`` command (``.venv/bin/dvc``), never from gitfree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import InputError, Store

DVC = str(Path(sys.executable).with_name("dvc"))

DATA = {
    "a.txt": b"a",
    "keep/k.txt": b"k",
    "s/t.txt": b"t",
    ".gitignore": b"*.pyc\n",  # data to DVC: kept
    ".git/HEAD": b"ref: refs/heads/main\n",  # a git checkout inside the data: DVC leaves .git/ out
    ".git/objects/ab/cdef": b"object",
    "vendored/.git": b"gitdir: ../.git/modules/vendored\n",  # a submodule's .git file: left out too
    "vendored/lib.py": b"x = 1\n",
    ".hg/store/data": b"hg",  # Mercurial's folder: left out
    "nested-repo/.dvc/config": b"",  # a DVC repository inside the data: left out whole
    "nested-repo/inner.txt": b"inner",
    "x.log": b"log",
    "s/y.log": b"log",
    "build/out.bin": b"o",
    "s/build/kept.bin": b"kept",  # /build/ is anchored: only the top build/ is ignored
    "t.tmp": b"tmp",
    "s/u.tmp": b"tmp",
    "s/keep.tmp": b"negated",  # !keep.tmp
    "cache/c.bin": b"c",
}


def _dvc(*args: str, cwd: Path) -> str:
    result = subprocess.run([DVC, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _dvc_add(repo: Path, target: str) -> tuple[str, int, list[str]]:
    """``dvc add`` ``target`` in ``repo``: its md5, nfiles and the relpaths of its listing (from DVC's cache)."""
    _dvc("add", "-q", target, cwd=repo)
    text = (repo / f"{target}.dvc").read_text()
    md5 = next(line.split()[-1] for line in text.splitlines() if line.strip().startswith("- md5:"))
    nfiles = int(next(line.split()[-1] for line in text.splitlines() if line.strip().startswith("nfiles:")))
    listing = json.loads((repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).read_text())
    return md5, nfiles, sorted(entry["relpath"] for entry in listing)


def _committed(store: Store, dataset: str, source: Path) -> tuple[str, int, list[str]]:
    version = store.commit(dataset, source)
    return version.md5, version.nfiles, sorted(e.path for e in store.files(version))


def _git_dvc_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, timeout=60)
    _dvc("init", "-q", cwd=root)
    return root


def test_a_folder_in_a_dvc_repository_gives_dvc_adds_md5(store: Store, tmp_path: Path) -> None:
    """git + DVC repository; the rules in its root ``.dvcignore`` and in a nested one (in a folder between
    the root and the data, the only place DVC allows one); ``.git/``, a submodule's ``.git`` file,
    ``.hg/`` and a nested DVC repository inside the data."""
    repo = _git_dvc_repo(tmp_path / "repo")
    write_tree(
        repo, {".dvcignore": b"*.log\n/project/data/build/\n", "project/.dvcignore": b"*.tmp\n!keep.tmp\ndata/cache/\n"}
    )
    data = write_tree(repo / "project" / "data", DATA)
    before = read_tree(data)

    mine = _committed(store, "ds", data)
    theirs = _dvc_add(repo, "project/data")
    assert mine == theirs
    assert theirs[2] == [
        ".gitignore",
        "a.txt",
        "keep/k.txt",
        "s/build/kept.bin",
        "s/keep.tmp",
        "s/t.txt",
        "vendored/lib.py",
    ]
    assert read_tree(data) == before  # neither touched the data


def test_a_git_checkout_folder_gives_dvc_adds_md5(store: Store, tmp_path: Path) -> None:
    """No ``.dvcignore`` at all: ``.git/`` and the rest of DVC's defaults are still left out."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _dvc("init", "-q", "--no-scm", cwd=repo)
    data = write_tree(repo / "data", DATA)
    assert _committed(store, "ds", data) == _dvc_add(repo, "data")


def test_a_standalone_folder_follows_its_own_dvcignore_files(store: Store, tmp_path: Path) -> None:
    """A folder in no DVC repository (a worker's output) is the root of its own rules: its top
    ``.dvcignore`` and nested ones apply as they would at the root of a repository, and are left out.

    DVC cannot add such a folder (it refuses a ``.dvcignore`` inside what it adds), so the same rules
    are given to the real ``dvc add`` from the repository root, each pattern rebased onto the folder
    (as DVC itself rebases a nested ``.dvcignore``), and the md5s must agree.
    """
    source = write_tree(tmp_path / "worker" / "data", DATA)
    write_tree(source, {".dvcignore": b"# comment\n*.log\n/build/\n", "s/.dvcignore": b"*.tmp\n!keep.tmp\n"})
    (source / "cache" / ".dvcignore").write_bytes(b"*\n")  # ignores everything in its folder, itself included
    mine = _committed(store, "ds", source)
    assert ".dvcignore" not in {Path(p).name for p in mine[2]}

    repo = tmp_path / "repo"
    repo.mkdir()
    _dvc("init", "-q", "--no-scm", cwd=repo)
    shutil.copytree(source, repo / "data", symlinks=True)
    for rules in (repo / "data").rglob(".dvcignore"):
        rules.unlink()
    (repo / ".dvcignore").write_text(
        "/data/**/*.log\n/data/build/\n/data/s/**/*.tmp\n!/data/s/**/keep.tmp\n/data/cache/**\n", encoding="utf-8"
    )
    theirs = _dvc_add(repo, "data")
    assert mine == theirs
    assert mine[2] == [
        ".gitignore",
        "a.txt",
        "keep/k.txt",
        "s/build/kept.bin",
        "s/keep.tmp",
        "s/t.txt",
        "t.tmp",  # the *.tmp of s/.dvcignore is for s/ only
        "vendored/lib.py",
    ]


def test_a_folder_its_repository_ignores_is_refused_as_dvc_refuses_it(store: Store, tmp_path: Path) -> None:
    repo = _git_dvc_repo(tmp_path / "repo")
    write_tree(repo, {".dvcignore": b"scratch/\n*.bak\n"})
    scratch = write_tree(repo / "scratch", {"a.txt": b"a"})
    backup = write_tree(repo, {"model.bak": b"weights"}) / "model.bak"
    with pytest.raises(InputError, match=r"ignores it \(\.dvcignore:1:scratch/\)"):
        store.commit("ds", scratch)
    with pytest.raises(InputError, match=r"ignores it \(\.dvcignore:2:\*\.bak\)"):
        store.commit("model", backup)
    assert store.datasets() == []
    for target in ("scratch", "model.bak"):  # the real DVC refuses both as well
        result = subprocess.run([DVC, "add", target], cwd=repo, capture_output=True, text=True, timeout=300)
        assert result.returncode != 0
        assert "is ignored by" in result.stderr


def test_a_folder_whose_every_file_is_ignored_holds_no_files(store: Store, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {".git/HEAD": b"ref", ".dvcignore": b"*.log\n", "run.log": b"log"})
    with pytest.raises(InputError, match=r"holds no files \(3 left out as dvc add leaves them out"):
        store.commit("ds", source)
    assert store.datasets() == []


def test_a_dvcignore_that_cannot_be_read_is_named(store: Store, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": b"a", "sub/b.txt": b"b"})
    (source / "sub" / ".dvcignore").write_bytes(b"\xff\xfe not utf-8\n")
    with pytest.raises(InputError, match=r"a \.dvcignore in 'sub' cannot be read"):
        store.commit("ds", source)
    assert store.datasets() == []


def test_what_is_ignored_is_never_read(store: Store, tmp_path: Path) -> None:
    """Ignored entries are not even looked at: a FIFO, a dangling link or an odd name there does not matter."""
    source = write_tree(tmp_path / "src", {"a.txt": b"a", ".dvcignore": b"tmp/\n"})
    (source / "tmp").mkdir()
    os.mkfifo(source / "tmp" / "pipe")
    (source / "tmp" / "dangling").symlink_to("nowhere")
    (source / "tmp" / "back\\slash").write_bytes(b"x")
    (source / ".git").mkdir()
    os.mkfifo(source / ".git" / "fsmonitor")
    version = store.commit("ds", source)
    assert [e.path for e in store.files(version)] == ["a.txt"]
