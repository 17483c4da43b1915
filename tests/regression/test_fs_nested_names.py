"""``gitfree://`` with nested dataset names: the ref ends at the segment holding ``@``; a path without
``@`` is matched against the dataset names, longest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree

from gitfree import Store
from gitfree.testing import SeaweedFS
from gitfree.versioning.fs import GitfreeFileSystem

pd = pytest.importorskip("pandas")

CSV = b"id,label\n1,cat\n2,dog\n"


@pytest.fixture(autouse=True)
def _no_leftover_instances() -> Iterator[None]:
    yield
    GitfreeFileSystem.clear_instance_cache()


def test_pandas_reads_a_nested_dataset_before_and_after_its_parent_exists(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path
) -> None:
    options: dict[str, Any] = {"store": s3_url, "cache_dir": str(tmp_path / "reader"), **seaweedfs.store_options()}
    writer = Store(s3_url, cache_dir=tmp_path / "writer", **seaweedfs.store_options())
    writer.commit("raw/sales", write_tree(tmp_path / "sales", {"train.csv": CSV}))

    frame = pd.read_csv("gitfree://raw/sales@1/train.csv", storage_options=options)
    assert frame["label"].tolist() == ["cat", "dog"]
    assert pd.read_csv("gitfree://raw/sales/train.csv", storage_options=options)["id"].tolist() == [1, 2]

    # Now "raw" exists too, with a folder "sales": the pinned path still means raw/sales@1, the unpinned
    # one the longest dataset name (raw/sales); raw's own folder is reached through a ref of raw.
    writer.commit("raw", write_tree(tmp_path / "raw", {"sales/train.csv": b"id,label\n9,raw\n", "top.txt": b"t"}))
    GitfreeFileSystem.clear_instance_cache()
    assert pd.read_csv("gitfree://raw/sales@1/train.csv", storage_options=options)["label"].tolist() == ["cat", "dog"]
    assert pd.read_csv("gitfree://raw/sales/train.csv", storage_options=options)["label"].tolist() == ["cat", "dog"]
    assert pd.read_csv("gitfree://raw@1/sales/train.csv", storage_options=options)["label"].tolist() == ["raw"]
    assert pd.read_csv("gitfree://raw@latest/sales/train.csv", storage_options=options)["id"].tolist() == [9]


def test_listing_and_errors_with_nested_names(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", write_tree(tmp_path / "sales", {"train.csv": CSV, "q/a@b.txt": b"at"}))
    fs = GitfreeFileSystem(store, skip_instance_cache=True)
    assert fs.ls("", detail=False) == ["raw/sales"]
    assert fs.ls("raw", detail=False) == ["raw/sales"]  # a folder of dataset names
    assert fs.info("raw")["type"] == "directory"
    assert fs.ls("raw/sales@1", detail=False) == ["raw/sales@1/q", "raw/sales@1/train.csv"]
    assert fs.ls("raw/sales", detail=False) == ["raw/sales/q", "raw/sales/train.csv"]
    assert fs.cat("raw/sales@1/q/a@b.txt") == b"at"  # '@' further down the path is the file's
    assert fs.cat("raw/sales@latest/q/a@b.txt") == b"at"
    assert fs.size("raw/sales/train.csv") == len(CSV)
    with pytest.raises(FileNotFoundError, match="no dataset"):
        fs.cat("nope/train.csv")
    with pytest.raises(FileNotFoundError, match=r"does not exist|no dataset"):
        fs.cat("raw@1/sales/train.csv")
