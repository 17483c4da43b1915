"""A pull never replaces what it must not (even with overwrite), and a destination below a file is one clear error.

Each refusal is an ``InputError`` naming the path and why; nothing is written or moved.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import InputError, Store


def _snapshot(root: Path) -> dict[str, bytes]:
    return read_tree(root) if root.exists() else {}


@pytest.fixture
def local(make_store: Callable[..., Store], tmp_path: Path) -> Store:
    store = make_store("file")
    store.commit("small", write_tree(tmp_path / "src", {"a.txt": b"1", "sub/b.txt": b"2"}))
    return store


def _refused(store: Store, dest: str | Path, match: str, overwrite: bool = True) -> InputError:
    with pytest.raises(InputError, match=match) as raised:
        store.pull("small", dest, overwrite=overwrite)
    return raised.value


def test_the_store_itself_through_any_spelling_is_refused(
    local: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitfree.versioning.backends import FileBackend

    assert isinstance(local.backend, FileBackend)
    root = local.backend.root
    before = _snapshot(root)
    error = _refused(local, root, r"is the store")
    assert str(root) in str(error) and "outside" in str(error)
    (tmp_path / "link").symlink_to(root)
    _refused(local, tmp_path / "link", r"is the store")  # a symbolic link to it
    _refused(local, tmp_path / "link" / "sub", r"lies inside the store")  # below a link to it
    _refused(local, root / "datasets", r"lies inside the store")
    _refused(local, root / "new-folder", r"lies inside the store")
    monkeypatch.chdir(tmp_path / "src")
    _refused(local, "../file-store/../file-store/.", r"is the store")  # relative, with '..'
    _refused(local, "../link/files", r"lies inside the store")
    assert _snapshot(root) == before
    assert local.show("small").number == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gitfree")]


def test_a_folder_holding_the_store_or_the_cache_is_refused(local: Store, tmp_path: Path) -> None:
    local.pull("small", tmp_path / "warm")  # fills the worker cache
    cache = local.cache_dir
    before = _snapshot(cache)
    _refused(local, cache, r"is the worker cache")
    _refused(local, cache / "files", r"lies inside the worker cache")
    _refused(local, cache.parent, r"contains the (store|worker cache)")  # the cache dir's parent
    outer = tmp_path / "outer"
    (outer / "nested").mkdir(parents=True)
    os.symlink(cache, outer / "nested" / "c")
    _refused(local, outer / "nested" / "c" / "..", r"contains the (store|worker cache)")  # '..' of a link
    assert _snapshot(cache) == before
    assert read_tree(local.pull("small", tmp_path / "elsewhere")) == {"a.txt": b"1", "sub/b.txt": b"2"}


def test_the_current_directory_its_parents_and_home_are_refused(
    local: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = write_tree(tmp_path / "work" / "deep", {"mine.txt": b"precious"})
    monkeypatch.chdir(work)
    _refused(local, ".", r"is the current directory")
    _refused(local, "", r"is the current directory")
    _refused(local, "..", r"contains the current directory")
    _refused(local, str(work.parent), r"contains the current directory")
    error = _refused(local, "~", r"is your home directory")
    assert "e.g." in str(error)
    _refused(local, "/", r"is the root directory", overwrite=False)
    assert read_tree(work) == {"mine.txt": b"precious"}
    assert os.getcwd() == str(work)
    # A new folder inside them is what to do instead.
    assert read_tree(local.pull("small", "small")) == {"a.txt": b"1", "sub/b.txt": b"2"}


def test_a_single_file_version_into_the_current_directory_is_a_file_in_it(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store("file")
    store.commit("one", write_tree(tmp_path / "f", {"model.bin": b"weights"}) / "model.bin")
    work = write_tree(tmp_path / "work", {"mine.txt": b"precious"})
    monkeypatch.chdir(work)
    assert store.pull("one", ".") == work / "model.bin"
    assert read_tree(work) == {"mine.txt": b"precious", "model.bin": b"weights"}
    with pytest.raises(InputError, match="lies inside the store"):
        store.pull("one", tmp_path / "file-store", overwrite=True)


def test_a_destination_below_a_file_is_one_clear_error(store: Store, tmp_path: Path) -> None:
    store.commit("small", write_tree(tmp_path / "src", {"a.txt": b"1"}))
    plain = tmp_path / "plainfile"
    plain.write_bytes(b"mine")
    for dest in (plain / "sub", plain / "sub" / "deeper"):
        with pytest.raises(InputError, match=r"plainfile is a file, not a folder"):
            store.pull("small", dest, overwrite=True)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"dangling is a symbolic link to nothing"):
        store.pull("small", tmp_path / "dangling" / "sub")
    assert plain.read_bytes() == b"mine"


def test_a_fifo_is_refused_even_with_overwrite(make_store: Callable[..., Store], tmp_path: Path) -> None:
    store = make_store("file")
    store.commit("one", write_tree(tmp_path / "f", {"x.bin": b"x"}) / "x.bin")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="device, FIFO or socket"):
        store.pull("one", fifo, overwrite=True)
    assert fifo.is_fifo()


SHM = Path("/dev/shm")


@pytest.mark.skipif(not (os.path.ismount(SHM) and os.access(SHM, os.W_OK)), reason="no writable /dev/shm mount")
def test_another_file_system_works_and_its_mount_point_is_refused(local: Store, tmp_path: Path) -> None:
    dest = SHM / f"gitfree-test-{os.getpid()}-{tmp_path.name}"
    try:
        assert read_tree(local.pull("small", dest)) == {"a.txt": b"1", "sub/b.txt": b"2"}
        local.commit("small", write_tree(tmp_path / "src", {"a.txt": b"one more"}))
        assert read_tree(local.pull("small", dest))["a.txt"] == b"one more"
        assert not [p for p in SHM.iterdir() if p.name.startswith(".gitfree-pull")]
    finally:
        import shutil

        shutil.rmtree(dest, ignore_errors=True)
    before = sorted(os.listdir(SHM))
    with pytest.raises(InputError, match="mount point"):
        local.pull("small", SHM, overwrite=True)
    assert sorted(os.listdir(SHM)) == before


def test_the_store_seen_through_a_bind_mount_is_refused(local: Store, tmp_path: Path) -> None:
    import shutil
    import subprocess

    from gitfree.versioning.backends import FileBackend

    assert isinstance(local.backend, FileBackend)
    mount = tmp_path / "bind"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("needs root and mount(8) for a bind mount")
    done = subprocess.run(["mount", "--bind", str(local.backend.root), str(mount)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"bind mounts are not allowed here: {done.stderr.decode().strip()}")
    try:
        before = _snapshot(local.backend.root)
        _refused(local, mount, r"is the store")  # same device and inode, another path
        _refused(local, mount / "datasets" / "new", r"lies inside the store")
        assert _snapshot(local.backend.root) == before
    finally:
        subprocess.run(["umount", str(mount)], check=True)
