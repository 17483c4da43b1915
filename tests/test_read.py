"""Reading a version without pulling it all: ``Store.open``, ``gitfree ls`` and ``gitfree cat``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import ALL_KINDS, random_tree, write_tree

from gitfree import InputError, IntegrityError, NotFoundError, Store
from gitfree.cli import cli
from gitfree.testing import CountingProxy, SeaweedFS
from gitfree.versioning import layout


def test_open_fetches_only_that_files_object(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    files = random_tree(tmp_path / "src", 40, seed=3, max_size=64 * 1024)
    files["labels/train.csv"] = b"a,b\n1,2\n"
    write_tree(tmp_path / "src", {"labels/train.csv": files["labels/train.csv"]})
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "writer", **options).commit("images", tmp_path / "src")
    total = sum(len(v) for v in files.values())

    with CountingProxy(seaweedfs.s3_port) as proxy:
        reader = Store(s3_url, cache_dir=tmp_path / "reader", **{**options, "endpoint_url": proxy.endpoint})
        proxy.take()
        with reader.open("images@1", "labels/train.csv") as f:
            assert f.read() == b"a,b\n1,2\n"
        counts = proxy.take()
        with reader.open("images", "labels/train.csv") as again:  # now from the worker cache
            assert again.read() == b"a,b\n1,2\n"
        cached = proxy.take()
    # The record (latest.json and a probe), the listing and one object: nothing else.
    assert counts.requests["GET"] <= 5, counts
    assert counts.bytes_down < 20_000 < total, counts
    assert cached.bytes_down < 10_000 and cached.requests["GET"] <= 3, cached


@pytest.mark.kinds(*ALL_KINDS)
def test_open_refuses_folders_and_missing_files_and_bad_bytes(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a/b.txt": b"1", "c.txt": b"2"}))
    with pytest.raises(InputError, match="is a folder"):
        store.open("ds", "a")
    with pytest.raises(NotFoundError, match=r"no file 'nope\.txt'"):
        store.open("ds", "nope.txt")
    md5 = next(e.md5 for e in store.files("ds") if e.path == "c.txt")
    (store.cache_dir / layout.object_key(md5)).write_bytes(b"rotten")  # a corrupted cache copy is replaced
    with store.open("ds", "c.txt") as f:
        assert f.read() == b"2"
    store.backend.put(layout.object_key(md5), b"tampered")
    (store.cache_dir / layout.object_key(md5)).unlink()
    with pytest.raises(IntegrityError, match="does not match"):
        store.open("ds", "c.txt")
    single = store.commit("one", write_tree(tmp_path / "f", {"data.bin": b"x" * 10}) / "data.bin")
    with store.open(single) as f:
        assert f.read() == b"x" * 10


def test_ls_and_cat_on_the_command_line(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    store = Store(s3_url, cache_dir=tmp_path / "c", **seaweedfs.store_options())
    store.commit("ds", write_tree(tmp_path / "src", {"a/b.txt": b"bee", "a/c/d.txt": b"dee", "top.txt": b"\x00\xff"}))
    runner = CliRunner()
    env = {**seaweedfs.env(), "GITFREE_STORE": s3_url, "GITFREE_CACHE_DIR": str(tmp_path / "cli")}
    top = runner.invoke(cli, ["ls", "ds"], env=env)
    assert top.exit_code == 0, top.output
    assert top.output.split() == ["a/", "top.txt"]
    inner = runner.invoke(cli, ["ls", "ds@1", "a", "--long"], env=env)
    assert inner.exit_code == 0 and "b.txt" in inner.output and "c/" in inner.output and "3 B" in inner.output
    cat = runner.invoke(cli, ["cat", "ds", "top.txt"], env=env)
    assert cat.exit_code == 0 and cat.stdout_bytes == b"\x00\xff"
    missing = runner.invoke(cli, ["cat", "ds", "zzz"], env=env)
    assert missing.exit_code == 3 and "no file 'zzz'" in missing.output
