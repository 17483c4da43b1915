"""``gitfree://``: the read-only fsspec filesystem, with pandas, fsspec's own get tests and request counts."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.tests.abstract import AbstractFixtures, AbstractGetTests
from helpers import ALL_KINDS, random_tree, read_tree, write_tree

from gitfree import IntegrityError, Store
from gitfree.testing import CountingProxy, SeaweedFS
from gitfree.versioning import layout
from gitfree.versioning.fs import GitfreeFileSystem

pd = pytest.importorskip("pandas")

CSV = b"id,label\n1,cat\n2,dog\n3,cat\n"


def _fs(store: Store) -> GitfreeFileSystem:
    return GitfreeFileSystem(store, skip_instance_cache=True)


def test_registered_with_fsspec() -> None:
    assert "gitfree" in fsspec.available_protocols()
    assert fsspec.get_filesystem_class("gitfree") is GitfreeFileSystem


def test_pandas_reads_one_file_of_a_version_fetching_only_its_object(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path
) -> None:
    files = random_tree(tmp_path / "src", 60, seed=5, max_size=64 * 1024)
    write_tree(tmp_path / "src", {"labels/train.csv": CSV})
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "writer", **options).commit("images", tmp_path / "src")
    total = sum(len(v) for v in files.values())

    with CountingProxy(seaweedfs.s3_port) as proxy:
        storage_options: dict[str, Any] = {
            "store": s3_url,
            "cache_dir": str(tmp_path / "reader"),
            **options,
            "endpoint_url": proxy.endpoint,
        }
        proxy.take()
        frame = pd.read_csv("gitfree://images@1/labels/train.csv", storage_options=storage_options)
        counts = proxy.take()
    assert list(frame.columns) == ["id", "label"]
    assert frame["label"].tolist() == ["cat", "dog", "cat"]
    # The record, the listing and the one object; none of the 60 other files.
    assert counts.requests["GET"] <= 5, counts
    assert counts.bytes_down < 20_000 < total, counts


@pytest.mark.kinds(*ALL_KINDS)
def test_listing_info_glob_find_and_cat(store: Store, tmp_path: Path) -> None:
    src = write_tree(
        tmp_path / "src",
        {"labels/train.csv": CSV, "labels/test.csv": b"id\n9\n", "images/a/1.png": b"P" * 300, "README": b"hi"},
    )
    store.commit("ds", src, message="first")
    fs = _fs(store)

    assert fs.ls("", detail=False) == ["ds"]
    assert fs.ls("ds@1", detail=False) == ["ds@1/README", "ds@1/images", "ds@1/labels"]
    listing = {i["name"]: i for i in fs.ls("gitfree://ds@1/labels")}
    assert listing["ds@1/labels/train.csv"]["size"] == len(CSV)
    assert listing["ds@1/labels/train.csv"]["type"] == "file"
    assert listing["ds@1/labels/train.csv"]["version"] == "ds@1"
    info = fs.info("ds@1/images/a/1.png")
    assert (info["type"], info["size"], info["md5"]) == ("file", 300, layout_md5(store, "images/a/1.png"))
    assert fs.info("ds@1/images")["type"] == "directory"
    assert fs.isdir("ds@1") and fs.isfile("ds@1/README") and not fs.exists("ds@1/nope")
    assert fs.glob("ds@1/**/*.csv") == ["ds@1/labels/test.csv", "ds@1/labels/train.csv"]
    assert fs.glob("ds@1/labels/t*.csv") == ["ds@1/labels/test.csv", "ds@1/labels/train.csv"]
    sized = fs.glob("ds@1/*/*.csv", detail=True)
    assert sized["ds@1/labels/test.csv"]["size"] == 5
    assert fs.find("ds@1") == ["ds@1/README", "ds@1/images/a/1.png", "ds@1/labels/test.csv", "ds@1/labels/train.csv"]
    assert fs.find("ds@1", maxdepth=1) == ["ds@1/README"]
    assert fs.find("ds@1/nope") == []
    assert fs.du("ds@1") == len(CSV) + 5 + 300 + 2
    assert fs.cat("ds@1/labels/train.csv") == CSV
    assert fs.cat_file("ds@1/labels/train.csv", start=3, end=8) == CSV[3:8]
    assert fs.cat(["ds@1/README", "ds@1/labels/test.csv"]) == {"ds@1/README": b"hi", "ds@1/labels/test.csv": b"id\n9\n"}
    assert fs.read_text("ds@1/README") == "hi"
    assert fs.ukey("ds@1/README") == layout_md5(store, "README")
    assert fs.created("ds@1") == store.show("ds@1").created_at
    with fs.open("ds@1/labels/train.csv", "rt") as f:
        assert f.readline() == "id,label\n"


def layout_md5(store: Store, path: str, ref: str = "ds@1") -> str:
    return next(e.md5 for e in store.files(ref) if e.path == path)


def test_refs_tags_and_latest(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "v1", {"x.txt": b"one"}))
    store.tag("ds@1", "prod")
    fs = _fs(store)
    assert fs.cat("ds/x.txt") == b"one"
    store.commit("ds", write_tree(tmp_path / "v2", {"x.txt": b"two", "y.txt": b"new"}))
    # An unpinned ref is resolved at every call; a number or a tag says which version.
    assert fs.cat("ds/x.txt") == b"two"
    assert fs.info("ds")["version"] == "ds@2"
    assert fs.cat("ds@prod/x.txt") == b"one"
    assert fs.cat("ds@latest~1/x.txt") == b"one"
    assert fs.ls("ds@1", detail=False) == ["ds@1/x.txt"]
    single = store.commit("model", write_tree(tmp_path / "m", {"model.bin": b"\x00" * 9}) / "model.bin")
    assert fs.ls(single.ref, detail=False) == [f"{single.ref}/model.bin"]
    assert fs.cat(f"{single.ref}/model.bin") == b"\x00" * 9


def test_missing_paths_and_bad_refs_are_file_not_found(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a/b.txt": b"1"}))
    fs = _fs(store)
    with pytest.raises(FileNotFoundError, match="has no version 7; it has version 1"):
        fs.cat("ds@7/a/b.txt")
    with pytest.raises(FileNotFoundError, match=r"no dataset|does not exist|has no"):
        fs.ls("nosuch")
    with pytest.raises(FileNotFoundError, match="malformed ref"):
        fs.info("ds@!!/a")
    with pytest.raises(FileNotFoundError, match="has no file or folder 'a/zzz'"):
        fs.open("ds@1/a/zzz")
    with pytest.raises(IsADirectoryError):
        fs.open("ds@1/a")
    with pytest.raises(FileNotFoundError):
        fs.ls("ds@1/a/b.txt/c")
    assert fs.ls("ds@1/a/b.txt", detail=False) == ["ds@1/a/b.txt"]  # fsspec: ls of a file is the file


def test_writes_are_refused_and_change_nothing(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a.txt": b"1"}))
    fs = _fs(store)
    local = write_tree(tmp_path / "local", {"b.txt": b"2"})
    attempts: list[Callable[[], object]] = [
        lambda: fs.open("ds@1/a.txt", "wb"),
        lambda: fs.open("ds@1/new.txt", "w"),
        lambda: fs.pipe("ds@1/a.txt", b"x"),
        lambda: fs.rm("ds@1/a.txt"),
        lambda: fs.rm("ds@1", recursive=True),
        lambda: fs.put(str(local / "b.txt"), "ds@1/b.txt"),
        lambda: fs.mkdir("ds@1/new"),
        lambda: fs.touch("ds@1/a.txt"),
        lambda: fs.mv("ds@1/a.txt", "ds@1/c.txt"),
        lambda: fs.cp_file("ds@1/a.txt", "ds@1/c.txt"),
    ]
    for attempt in attempts:
        with pytest.raises(OSError, match="read-only") as raised:
            attempt()
        assert raised.value.errno == errno.EROFS
    assert [v.number for v in store.log("ds")] == [1]
    assert fs.cat("ds@1/a.txt") == b"1"


@pytest.mark.kinds(*ALL_KINDS)
def test_reads_are_hash_checked(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a.txt": b"good", "b.txt": b"fine"}))
    md5 = layout_md5(store, "a.txt")
    (store.cache_dir / layout.object_key(md5)).write_bytes(b"rotten")  # corrupted worker cache: replaced
    fs = _fs(store)
    assert fs.cat("ds@1/a.txt") == b"good"
    store.backend.put(layout.object_key(md5), b"tampered")  # corrupted store object: refused
    (store.cache_dir / layout.object_key(md5)).unlink()
    with pytest.raises(IntegrityError, match="does not match"):
        fs.cat("ds@1/a.txt")
    with pytest.raises(IntegrityError):
        fs.get("ds@1/", str(tmp_path / "out") + "/", recursive=True)


def test_get_folder_downloads_only_its_objects_in_parallel(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    others = random_tree(tmp_path / "src", 80, seed=9, max_size=32 * 1024)
    wanted = write_tree(tmp_path / "src", {f"labels/{i}.csv": f"{i},x\n".encode() for i in range(20)})
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "writer", **options).commit("ds", wanted)
    with CountingProxy(seaweedfs.s3_port) as proxy:
        reader = Store(s3_url, cache_dir=tmp_path / "reader", **{**options, "endpoint_url": proxy.endpoint})
        fs = _fs(reader)
        proxy.take()
        fs.get("ds@1/labels/", str(tmp_path / "out") + "/", recursive=True)
        counts = proxy.take()
        reader.pull("ds@1", tmp_path / "pulled", paths=["labels"])
        pulled = proxy.take()
    assert read_tree(tmp_path / "out") == {f"{i}.csv": f"{i},x\n".encode() for i in range(20)}
    assert set(read_tree(tmp_path / "pulled")) == {f"labels/{i}.csv" for i in range(20)}
    # 20 objects, the listing (100 entries) and the record; none of the 80 other files.
    assert counts.requests["GET"] <= 25, counts
    assert counts.bytes_down < 30_000 < sum(len(v) for v in others.values()), counts
    # The partial pull finds every object it needs in the worker cache: records only.
    assert pulled.requests["GET"] <= 3 and pulled.bytes_down < 5_000, pulled


def test_storage_options_from_the_environment(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(s3_url, cache_dir=tmp_path / "w", **seaweedfs.store_options()).commit(
        "ds", write_tree(tmp_path / "src", {"t.csv": CSV})
    )
    for name, value in {**seaweedfs.env(), "GITFREE_STORE": s3_url, "GITFREE_CACHE_DIR": str(tmp_path / "r")}.items():
        monkeypatch.setenv(name, value)
    with fsspec.open("gitfree://ds/t.csv", "rb") as f:
        assert f.read() == CSV
    fs = fsspec.filesystem("gitfree")
    assert repr(fs) == f"GitfreeFileSystem({s3_url!r})"
    assert seaweedfs.secret_key not in repr(fs)


# ---------------------------------------------------------------------------- fsspec's own get tests


class TestFsspecGetConformance(AbstractFixtures, AbstractGetTests):  # type: ignore[misc]
    """fsspec's abstract ``get`` tests; each remote scenario is committed as a version first.

    The tests only read the scenarios: each is committed once for the class, into one store, and each test
    reads it through a store of its own with a cold worker cache (32 glob cases read the same version).
    """

    @pytest.fixture(scope="class")
    def scenario_store(self, seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Store:
        cache = tmp_path_factory.mktemp("conformance-writer")
        return Store(f"s3://{seaweedfs.bucket}/t-{uuid.uuid4().hex[:12]}", cache_dir=cache, **seaweedfs.store_options())

    @pytest.fixture(scope="class")
    def commit_scenario(self, scenario_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
        committed: dict[str, str] = {}

        def commit(scenario: str) -> str:
            if scenario not in committed:
                local = LocalFileSystem(auto_mkdir=True)
                root = tmp_path_factory.mktemp(f"scenario-{scenario}")
                source = getattr(self, f"_{scenario}")(local, os.path.join, str(root))
                version = scenario_store.commit(f"s{len(committed)}", root)
                committed[scenario] = f"{version.ref}/{Path(source).relative_to(root).as_posix()}"
            return committed[scenario]

        return commit

    @pytest.fixture
    def conformance_store(self, scenario_store: Store, tmp_path: Path) -> Store:
        return Store(scenario_store.url, cache_dir=tmp_path / "reader-cache", settings=scenario_store.settings)

    @pytest.fixture
    def fs(self, conformance_store: Store) -> GitfreeFileSystem:
        return _fs(conformance_store)

    @pytest.fixture
    def fs_path(self) -> str:
        return ""

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False  # a version holds files; folders exist through them (as in DVC)

    @pytest.fixture
    def fs_bulk_operations_scenario_0(self, commit_scenario: Callable[[str], str]) -> str:
        return commit_scenario("bulk_operations_scenario_0")

    @pytest.fixture
    def fs_glob_edge_cases_files(self, commit_scenario: Callable[[str], str]) -> str:
        return commit_scenario("glob_edge_cases_files")

    @pytest.fixture
    def fs_dir_and_file_with_same_name_prefix(self, commit_scenario: Callable[[str], str]) -> str:
        return commit_scenario("dir_and_file_with_same_name_prefix")

    @pytest.fixture
    def fs_10_files_with_hashed_names(self, commit_scenario: Callable[[str], str]) -> str:
        return commit_scenario("10_files_with_hashed_names")

    def test_get_directory_recursive(
        self, fs: GitfreeFileSystem, conformance_store: Store, local_fs: LocalFileSystem, tmp_path: Path
    ) -> None:
        """fsspec's version makes ``src/file`` with mkdir and touch; here it is committed."""
        version = conformance_store.commit("rec", write_tree(tmp_path / "rec", {"src/file": b""}))
        src, target = f"{version.ref}/src", str(tmp_path / "target")
        for loop in range(2):
            fs.get(src, target, recursive=True)
            assert local_fs.isdir(target)
            assert local_fs.isfile(os.path.join(target, "file"))
            if loop == 0:
                assert not local_fs.exists(os.path.join(target, "src"))
            else:
                assert local_fs.isfile(os.path.join(target, "src", "file"))


@pytest.fixture(autouse=True)
def _no_leftover_instances() -> Iterator[None]:
    yield
    GitfreeFileSystem.clear_instance_cache()


def test_pickles_for_dask_and_maps_for_zarr(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    import pickle

    options: dict[str, Any] = {"store": s3_url, "cache_dir": str(tmp_path / "r"), **seaweedfs.store_options()}
    Store(s3_url, cache_dir=tmp_path / "w", **seaweedfs.store_options()).commit(
        "ds", write_tree(tmp_path / "src", {"z/.zarray": b"{}", "z/0.0": b"\x01\x02"})
    )
    fs = fsspec.filesystem("gitfree", **options)
    clone = pickle.loads(pickle.dumps(fs))  # noqa: S301 - what dask sends to its workers
    assert clone.cat("ds@1/z/0.0") == b"\x01\x02"
    mapper = fsspec.get_mapper("gitfree://ds@1/z", **options)
    assert sorted(mapper) == [".zarray", "0.0"]
    assert mapper["0.0"] == b"\x01\x02"
    files = fsspec.open_files("gitfree://ds@1/**/0.*", **options)
    assert [f.path for f in files] == ["ds@1/z/0.0"]
