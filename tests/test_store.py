"""Round trips, no-op commits, refs, tags, diff and log, on S3 (SeaweedFS), a local directory, Azure Blob (Azurite)
and Google Cloud Storage (fake-gcs-server)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import ALL_KINDS, REMOTE_KINDS, random_tree, read_tree, write_tree

from gitfree import ConflictError, NotFoundError, Store
from gitfree.testing import SeaweedFS
from gitfree.versioning import layout

pytestmark = pytest.mark.kinds(*ALL_KINDS)

UNICODE = {
    "nested/deeper/still/file.txt": b"deep\n",
    "empty.txt": b"",
    "empty-dir-sibling/also-empty": b"",
    "ünïcödé/日本語 ファイル.csv": b"a,b\n1,2\n",
    "spaces in name.txt": b"spaces",
    "top.bin": bytes(range(256)) * 40,
}


def test_round_trip_is_byte_identical(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", UNICODE)
    version = store.commit("images", src, message="first", metadata={"source": "cam-3"}, metrics={"rows": 2})
    assert (version.number, version.parent, version.nfiles) == (1, None, len(UNICODE))
    assert version.size == sum(len(b) for b in UNICODE.values())
    assert version.created_at.tzinfo is not None
    assert version.metadata == {"source": "cam-3"} and version.metrics == {"rows": 2.0}
    assert version.author.user and version.author.host

    dest = store.pull("images@1", tmp_path / "out" / "images")
    assert read_tree(dest) == UNICODE


def test_single_file_round_trip(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "model.pt"
    src.write_bytes(b"\x00weights" * 1000)
    version = store.commit("models/resnet", src)
    assert (version.nfiles, version.size, version.is_dir) == (1, 8000, False)
    assert store.pull(version, tmp_path / "a.pt").read_bytes() == src.read_bytes()
    # an existing directory as destination receives the file under its own name
    (tmp_path / "dir").mkdir()
    assert store.pull(version, tmp_path / "dir") == tmp_path / "dir" / "model.pt"
    assert (tmp_path / "dir" / "model.pt").read_bytes() == src.read_bytes()


def test_file_over_the_multipart_threshold(s3_store: Store, tmp_path: Path) -> None:
    block = os.urandom(1 << 20)
    big = tmp_path / "src" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:  # 101 MiB: s3fs switches to multipart above 100 MiB
        for i in range(101):
            f.write(i.to_bytes(4, "big") + block[4:])
    version = s3_store.commit("big", big.parent)
    assert s3_store.backend.size(layout.object_key(s3_store.files(version)[0].md5)) == 101 << 20
    other = Store(s3_store.url, cache_dir=tmp_path / "other-cache", settings=s3_store.settings)
    out = other.pull("big", tmp_path / "out")
    assert (out / "big.bin").stat().st_size == 101 << 20
    assert (out / "big.bin").read_bytes() == big.read_bytes()


def test_unchanged_data_makes_no_new_version(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a": b"1", "b/c": b"2"})
    first = store.commit("ds", src)
    again = store.commit("ds", src, message="nightly")
    assert again == first
    assert [v.number for v in store.log("ds")] == [1]
    forced = store.commit("ds", src, force=True, message="forced")
    assert (forced.number, forced.parent, forced.md5) == (2, 1, first.md5)


def test_versions_number_parents_and_lineage(store: Store, tmp_path: Path) -> None:
    raw = store.commit("raw", write_tree(tmp_path / "raw", {"x": b"raw"}))
    src = tmp_path / "src"
    numbers = []
    for i in range(3):
        write_tree(src, {f"f{i}": str(i).encode()})
        numbers.append(store.commit("clean", src, inputs=["raw@1"]).number)
    assert numbers == [1, 2, 3]
    log = store.log("clean")
    assert [v.number for v in log] == [3, 2, 1]
    assert [v.parent for v in log] == [2, 1, None]
    assert all(v.inputs[0].dataset == "raw" and v.inputs[0].number == raw.number for v in log)
    assert [v.number for v in store.log("clean", limit=2)] == [3, 2]
    assert store.datasets() == ["clean", "raw"]


def test_refs_resolve(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(4):
        write_tree(src, {f"f{i}": b"x"})
        store.commit("ds", src)
    assert store.show("ds").number == 4
    assert store.show("ds@latest").number == 4
    assert store.show("ds@latest~3").number == 1
    assert store.show("ds@2").number == 2
    with pytest.raises(NotFoundError, match="versions 1 to 4"):
        store.show("ds@9")
    with pytest.raises(NotFoundError, match="before the first version"):
        store.show("ds@latest~4")


def test_head_is_found_even_if_latest_hint_is_stale(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_tree(src, {"a": b"1"})
    store.commit("ds", src)
    stale, _ = store.backend.get(layout.latest_key("ds"))
    write_tree(src, {"b": b"2"})
    store.commit("ds", src)
    store.backend.put(layout.latest_key("ds"), stale)  # as if the writer of v2 died before step 7
    assert store.show("ds").number == 2
    write_tree(src, {"c": b"3"})
    assert store.commit("ds", src).number == 3
    store.backend.delete(layout.latest_key("ds"))
    assert store.show("ds").number == 3


def test_tags_are_create_only_and_move_on_request(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(3):
        write_tree(src, {f"f{i}": b"x"})
        store.commit("ds", src)
    tag = store.tag("ds@2", "prod")
    assert (tag.dataset, tag.tag, tag.number) == ("ds", "prod", 2)
    assert store.show("ds@prod").number == 2
    assert store.tag("ds@2", "prod").number == 2  # idempotent
    with pytest.raises(ConflictError, match="pass move=True to move it") as refused:
        store.tag("ds@3", "prod")
    assert "pass --move to move it" in refused.value.in_cli_terms()
    assert store.show("ds@prod").number == 2
    assert store.tag("ds@3", "prod", move=True).number == 3
    assert store.show("ds@prod").number == 3
    store.tag("ds@1", "first")
    assert [(t.tag, t.number) for t in store.tags("ds")] == [("first", 1), ("prod", 3)]
    with pytest.raises(NotFoundError, match="its tags are: first, prod"):
        store.show("ds@staging")


def test_diff_reports_paths_and_sizes(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"keep": b"same", "change": b"old", "gone/x": b"bye!"})
    store.commit("ds", src)
    (src / "gone" / "x").unlink()
    write_tree(src, {"change": b"newer", "new/y": b"hello"})
    store.commit("ds", src)
    diff = store.diff("ds@1", "ds@2")
    assert (diff.old, diff.new) == ("ds@1", "ds@2")
    assert [(e.path, e.status, e.old_size, e.new_size) for e in diff.entries] == [
        ("change", "modified", 3, 5),
        ("gone/x", "removed", 4, None),
        ("new/y", "added", None, 5),
    ]
    assert not store.diff("ds@2", "ds@2")


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_diff_sizes_come_from_the_store_in_a_fresh_worker(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    writer = make_store(kind)
    src = write_tree(tmp_path / "src", {"a": b"12345"})
    writer.commit("ds", src)
    write_tree(src, {"a": b"1234567"})
    writer.commit("ds", src)
    reader = make_store(kind)
    assert [(e.old_size, e.new_size) for e in reader.diff("ds@1", "ds@2").entries] == [(5, 7)]


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_second_pull_moves_only_missing_objects(make_store: Callable[..., Store], tmp_path: Path, kind: str) -> None:
    writer = make_store(kind)
    src = tmp_path / "src"
    files = random_tree(src, 60, seed=1)
    writer.commit("ds", src)
    for rel in list(files)[:3]:
        (src / rel).write_bytes(b"changed " + rel.encode())
    writer.commit("ds", src)

    worker = make_store(kind)
    worker.pull("ds@1", tmp_path / "v1")
    objects = worker.cache_dir / "files" / "md5"
    before = {p: p.stat().st_mtime_ns for p in objects.rglob("*") if p.is_file()}
    worker.pull("ds@2", tmp_path / "v2")
    after = {p: p.stat().st_mtime_ns for p in objects.rglob("*") if p.is_file()}
    new = set(after) - set(before)
    assert len(new) == 3 + 1  # three changed files and the new .dir listing
    assert all(after[p] == mtime for p, mtime in before.items())  # nothing re-downloaded

    # the same version again, to a new destination: no download at all
    worker.pull("ds@2", tmp_path / "v2-again")
    assert {p: p.stat().st_mtime_ns for p in objects.rglob("*") if p.is_file()} == after
    assert read_tree(tmp_path / "v2-again") == read_tree(src)


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_pull_mixes_cached_and_new_objects_and_repeated_contents(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Some objects come from the store, others from the worker cache; one object can be many files."""
    writer = make_store(kind)
    src = write_tree(tmp_path / "src", {"a": b"X", "b": b"Y"})
    writer.commit("ds", src)
    write_tree(src, {"b": b"Z", "dup/1": b"Z", "dup/2": b"X", "c/d/e": b"W" * 70_000, "empty": b"", "empty2": b""})
    writer.commit("ds", src)

    worker = make_store(kind)
    assert read_tree(worker.pull("ds@1", tmp_path / "v1")) == {"a": b"X", "b": b"Y"}
    dest = worker.pull("ds@2", tmp_path / "v2")
    assert read_tree(dest) == read_tree(src)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gitfree")]  # no staging folder left


def test_pull_onto_a_destination_at_that_version_is_a_no_op(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a": b"1", "b/c": b"2"})
    store.commit("ds", src)
    dest = store.pull("ds", tmp_path / "dest")
    inode = (dest / "b" / "c").stat().st_ino
    assert store.pull("ds", dest) == dest
    assert (dest / "b" / "c").stat().st_ino == inode


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_partial_pull_fetches_only_the_folder(make_store: Callable[..., Store], tmp_path: Path, kind: str) -> None:
    writer = make_store(kind)
    src = write_tree(tmp_path / "src", {"labels/train.csv": b"t", "labels/test.csv": b"e", "images/a.png": b"A" * 100})
    writer.commit("ds", src)
    worker = make_store(kind)
    dest = worker.pull("ds", tmp_path / "dest", paths=["labels/"])
    assert read_tree(dest) == {"labels/train.csv": b"t", "labels/test.csv": b"e"}
    cached = [p for p in (worker.cache_dir / "files").rglob("*") if p.is_file() and not p.name.endswith(".dir")]
    assert len(cached) == 2


def test_overwrite_replaces_a_destination_with_other_data(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a": b"1"})
    store.commit("ds", src)
    dest = write_tree(tmp_path / "dest", {"mine.txt": b"precious"})
    from gitfree import InputError

    with pytest.raises(InputError, match="overwrite"):
        store.pull("ds", dest)
    assert read_tree(dest) == {"mine.txt": b"precious"}
    store.pull("ds", dest, overwrite=True)
    assert read_tree(dest) == {"a": b"1"}
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".gitfree")]


def test_no_temporary_files_are_left_also_on_failure(
    s3_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    src = write_tree(tmp_path / "src", {"a": b"1"})
    s3_store.commit("ds", src)
    s3_store.pull("ds", tmp_path / "dest")
    assert list((tmp_path / "tmp").iterdir()) == []

    endpoint = s3_store.backend.endpoint if hasattr(s3_store.backend, "endpoint") else None
    broken = Store(
        s3_store.url, cache_dir=tmp_path / "c2", endpoint_url=endpoint, access_key_id="wrong", secret_access_key="wrong"
    )
    from gitfree import ConfigError

    with pytest.raises(ConfigError):
        broken.pull("ds", tmp_path / "dest2")
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "dest2").exists()


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_commit_and_pull_work_inside_a_running_event_loop(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """An async flow or a notebook calls the synchronous API from inside an event loop."""
    import asyncio

    store = make_store(kind)
    files = {"a": b"1", "sub/b": b"2"}

    async def main() -> Path:
        version = store.commit("ds", write_tree(tmp_path / "src", files))
        return store.pull(version, tmp_path / "out")

    assert read_tree(asyncio.run(main())) == files


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a second file system (tmpfs at /dev/shm)")
def test_checkout_across_file_systems(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    """The worker cache on another file system: copy_file_range may refuse (EXDEV); the copy falls back."""
    import tempfile

    files = {"a/b.bin": os.urandom(70_000), "c.txt": b"c", "empty": b""}
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "writer", **options).commit("ds", write_tree(tmp_path / "src", files))
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        worker = Store(s3_url, cache_dir=Path(shm) / "cache", **options)
        worker.pull("ds", tmp_path / "first")
        dest = worker.pull("ds", tmp_path / "second")  # from the (trusted) cache: the kernel copy
    assert read_tree(dest) == files
