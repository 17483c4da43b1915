"""fsspec on a single-file version (sizes), instances keyed on every setting, and pickling from an S3 Store."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest
from helpers import write_tree

from gitfree import Store
from gitfree.testing import SeaweedFS
from gitfree.versioning.fs import GitfreeFileSystem


@pytest.fixture(autouse=True)
def _no_leftover_instances() -> Iterator[None]:
    yield
    GitfreeFileSystem.clear_instance_cache()


def test_sizes_of_a_single_file_version(store: Store, tmp_path: Path) -> None:
    store.commit("one", write_tree(tmp_path / "f", {"train.csv": b"a,b\n1,2\n"}) / "train.csv")
    fs = GitfreeFileSystem(store, skip_instance_cache=True)
    assert fs.size("one@1/train.csv") == 8
    assert fs.ls("one@1")[0]["size"] == 8
    assert fs.du("one@1") == 8
    assert fs.du("one@1", total=False) == {"one@1/train.csv": 8}


def test_instances_are_keyed_on_every_setting(
    make_store: Callable[..., Store], seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path
) -> None:
    a, b = make_store("s3"), make_store("s3")
    assert a.url == b.url and a.cache_dir != b.cache_dir
    fs_a, fs_b = GitfreeFileSystem(a), GitfreeFileSystem(b)
    assert fs_a is not fs_b
    assert (fs_a.store.cache_dir, fs_b.store.cache_dir) == (a.cache_dir, b.cache_dir)
    assert GitfreeFileSystem(a) is fs_a  # the same settings still share one

    options = {"store": s3_url, **seaweedfs.store_options()}
    one = fsspec.filesystem("gitfree", cache_dir=str(tmp_path / "one"), **options)
    two = fsspec.filesystem("gitfree", cache_dir=str(tmp_path / "two"), **options)
    assert one is not two and one.store.cache_dir != two.store.cache_dir
    assert fsspec.filesystem("gitfree", cache_dir=str(tmp_path / "one"), **options) is one
    other_secret = fsspec.filesystem(
        "gitfree", cache_dir=str(tmp_path / "one"), **{**options, "secret_access_key": "x"}
    )
    assert other_secret is not one
    # The key holds no secret in clear.
    for fs in (fs_a, one, other_secret):
        assert seaweedfs.secret_key not in repr(fs.storage_options.get("_gitfree_key")) + repr(fs)


def test_instances_follow_the_environment(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**seaweedfs.env(), "GITFREE_STORE": s3_url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "first"))
    first = fsspec.filesystem("gitfree")
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "second"))
    second = fsspec.filesystem("gitfree")
    assert first is not second
    assert second.store.cache_dir == tmp_path / "second"


def test_a_filesystem_built_from_an_s3_store_pickles(s3_store: Store, tmp_path: Path) -> None:
    s3_store.commit("ds", write_tree(tmp_path / "src", {"z/0.0": b"\x01\x02"}))
    fs = GitfreeFileSystem(s3_store)
    clone = pickle.loads(pickle.dumps(fs))  # noqa: S301 - what dask sends to its workers
    assert clone.cat("ds@1/z/0.0") == b"\x01\x02"
    assert clone.store.url == s3_store.url and clone.store.cache_dir == s3_store.cache_dir
    GitfreeFileSystem.clear_instance_cache()
    fresh = pickle.loads(pickle.dumps(fs))  # noqa: S301 - a fresh worker process
    assert fresh.cat("ds@1/z/0.0") == b"\x01\x02"
