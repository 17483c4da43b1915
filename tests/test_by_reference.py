"""Versions by reference (docs/design.md, "Versions by reference"): commit files where they are, on a real
SeaweedFS bucket (versioning on or off) and a local folder, and read them back hash-checked, pinned to what
was committed."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _workers import commit_by_reference_and_crash
from click.testing import CliRunner
from figures import FULL
from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.cli import cli
from gitfree.testing import CountingProxy, SeaweedFS
from gitfree.versioning import ConfigError, ConflictError, InputError, IntegrityError, NotFoundError, layout
from gitfree.versioning.backends import S3Backend
from gitfree.versioning.catalog import _newer_format
from gitfree.versioning.fs import GitfreeFileSystem

SPAWN = multiprocessing.get_context("spawn")
FILES = {
    "a.csv": b"x,y\n1,2\n",
    "d/b.txt": b"hello b",
    "d/e/c.bin": bytes(range(256)) * 40,
    "z.json": b"{}",
}


@dataclass
class Place:
    """A source of files (an S3 prefix on SeaweedFS, or a local folder) and stores to commit them into."""

    kind: str
    url: str
    write: Callable[[str, bytes], object]
    remove: Callable[[str], object]
    store: Callable[..., Store]
    extra: dict[str, Any] = field(default_factory=dict)


def _s3_place(seaweedfs: SeaweedFS, make_store: Callable[..., Store], *, versioned: bool) -> Place:
    client = seaweedfs.client()
    bucket = f"ref-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return Place(
        "s3",
        f"s3://{bucket}/data/",
        lambda path, data: client.put_object(Bucket=bucket, Key=f"data/{path}", Body=data),
        lambda path: client.delete_object(Bucket=bucket, Key=f"data/{path}"),
        lambda **kw: make_store("s3", **kw),
        {"client": client, "bucket": bucket},
    )


def _file_place(tmp_path: Path, make_store: Callable[..., Store]) -> Place:
    root = tmp_path / "shared" / "data"
    root.mkdir(parents=True)
    return Place(
        "file",
        f"file://{root}/",
        lambda path, data: write_tree(root, {path: data}),
        lambda path: (root / path).unlink(),
        lambda **kw: make_store("file", **kw),
        {"root": root},
    )


@pytest.fixture(params=["s3", "file"])
def place(
    request: pytest.FixtureRequest, seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> Place:
    """A versioned S3 bucket, or a shared folder."""
    if request.param == "s3":
        return _s3_place(seaweedfs, make_store, versioned=True)
    return _file_place(tmp_path, make_store)


@pytest.fixture(params=["s3", "file"])
def drifting(
    request: pytest.FixtureRequest, seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> Place:
    """A source that keeps no old bytes: an S3 bucket without versioning, or a shared folder."""
    if request.param == "s3":
        return _s3_place(seaweedfs, make_store, versioned=False)
    return _file_place(tmp_path, make_store)


def _fill(place: Place, files: dict[str, bytes] = FILES) -> None:
    for path, data in files.items():
        place.write(path, data)


def _file_objects(store: Store) -> set[str]:
    """The file objects (not listings) in the store's files/md5/."""
    return {oid for oid in store.objects.scan() if not layout.is_listing(oid)}


def _cached_files(store: Store) -> list[Path]:
    return [p for p in (store.cache_dir / "files" / "md5").rglob("*") if p.is_file() and p.suffix != ".dir"]


def test_a_version_by_reference_is_read_like_any_other(place: Place, tmp_path: Path) -> None:
    _fill(place)
    writer = place.store()
    version = writer.commit("images", place.url, by_reference=True, message="in place")
    assert (version.ref, version.created, version.format, version.nfiles) == ("images@1", True, 2, 4)
    assert version.reference is not None and version.reference.source == place.url
    assert version.size == sum(len(d) for d in FILES.values())
    # Nothing uploaded but the listing, nothing copied into the worker cache.
    assert _file_objects(writer) == set()
    assert _cached_files(writer) == []
    # An unchanged source is no new version.
    again = writer.commit("images", place.url, by_reference=True)
    assert (again.ref, again.created) == ("images@1", False)

    reader = place.store()  # another worker, its own cache
    assert read_tree(reader.pull("images@1", tmp_path / "out")) == FILES
    assert reader.open("images", "d/b.txt").read() == b"hello b"
    assert read_tree(reader.pull("images@1", tmp_path / "part", paths=["d/e"])) == {"d/e/c.bin": FILES["d/e/c.bin"]}
    assert reader.peek("images@1", "d/e/c.bin", 256, 4) == bytes(range(4))
    assert reader.peek(place.store().show("images@1"), "a.csv", -2) == b"2\n"
    assert {e.path: e.size for e in place.store().files("images@1", sizes=True)} == {
        p: len(d) for p, d in FILES.items()
    }
    assert _file_objects(reader) == set()  # reading put nothing into the store
    fs = GitfreeFileSystem(place.store(), skip_instance_cache=True)
    assert fs.cat("images@1/d/b.txt") == b"hello b"
    assert sorted(fs.find("images@1")) == sorted(f"images@1/{p}" for p in FILES)


def test_the_listing_is_the_one_an_upload_makes(place: Place, tmp_path: Path) -> None:
    """The .dir listing rebuilt from the table is DVC's own bytes: an upload of the same files has its md5. The
    same data uploaded or referenced are different versions (what a reader fetches differs)."""
    _fill(place)
    store = place.store()
    referenced = store.commit("images", place.url, by_reference=True)
    uploaded = store.commit("images", write_tree(tmp_path / "data", FILES))
    assert uploaded.md5 == referenced.md5
    assert (uploaded.number, uploaded.created, uploaded.format, uploaded.reference) == (2, True, 1, None)
    back = store.commit("images", place.url, by_reference=True)
    assert (back.number, back.created, back.reference) == (3, True, referenced.reference)


def test_only_new_or_changed_keys_are_looked_at_and_a_versionid_keeps_the_old_bytes(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    place = _s3_place(seaweedfs, make_store, versioned=True)
    _fill(place)
    store = place.store()
    first = store.commit("images", place.url, by_reference=True)
    heads: list[str] = []
    real_head = S3Backend.head

    def head(self: S3Backend, key: str) -> Any:
        heads.append(key)
        return real_head(self, key)

    monkeypatch.setattr(S3Backend, "head", head)
    assert not store.commit("images", place.url, by_reference=True).created
    assert heads == []  # R4: a no-op import HEADs and reads nothing
    place.write("d/b.txt", b"hello again")
    second = store.commit("images", place.url, by_reference=True)
    assert (second.number, second.created) == (2, True)
    assert heads == ["d/b.txt"]
    reader = place.store()
    assert reader.open(first, "d/b.txt").read() == b"hello b"  # pinned by its VersionId
    assert reader.open(second, "d/b.txt").read() == b"hello again"


def test_a_source_that_changed_is_an_integrity_error_and_nothing_else_is_kept(drifting: Place, tmp_path: Path) -> None:
    _fill(drifting)
    drifting.store().commit("images", drifting.url, by_reference=True)
    drifting.write("d/b.txt", b"other bytes, longer")
    drifting.remove("z.json")
    reader = drifting.store()
    with pytest.raises(IntegrityError, match=rf"{drifting.url}d/b\.txt changed since it was committed"):
        reader.open("images@1", "d/b.txt")
    with pytest.raises(IntegrityError, match=rf"{drifting.url}z\.json changed .*no longer exists"):
        reader.open("images@1", "z.json")
    with pytest.raises(IntegrityError, match=rf"{drifting.url}d/b\.txt changed since it was committed"):
        reader.peek("images@1", "d/b.txt", 0, 3)  # a range is not hashed: it is pinned (If-Match; the stat)
    with pytest.raises(IntegrityError):
        reader.pull("images@1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # What was intact may be in the cache, and only that (R1).
    assert all(p.read_bytes() in FILES.values() for p in _cached_files(reader))
    assert {p.read_bytes() for p in _cached_files(reader)} <= {FILES["a.csv"], FILES["d/e/c.bin"]}
    assert reader.open("images@1", "a.csv").read() == FILES["a.csv"]


def test_the_bytes_are_hashed_even_when_the_file_looks_unchanged(
    tmp_path: Path, make_store: Callable[..., Store]
) -> None:
    """A file rewritten in place with the same size and its mtime set back passes every stat check: only the
    md5 of the bytes read tells, and they never reach the cache."""
    place = _file_place(tmp_path, make_store)
    _fill(place)
    place.store().commit("images", place.url, by_reference=True)
    path = place.extra["root"] / "d" / "b.txt"
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"HELLO B")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    reader = place.store()
    with pytest.raises(IntegrityError, match=r"d/b\.txt changed .*md5 [0-9a-f]{32} \(7 bytes\) of the bytes read"):
        reader.open("images@1", "d/b.txt")
    assert _cached_files(reader) == []


def test_bad_sources_are_one_clear_error_and_nothing_is_written(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    s3 = _s3_place(seaweedfs, make_store, versioned=False)
    local = _file_place(tmp_path, make_store)
    s3.write("folder/", b"")  # a console's folder marker is no file
    store, files = s3.store(), local.store()
    cases: list[tuple[Store, str, type[Exception], str]] = [
        (store, s3.url, InputError, "holds no objects; check the prefix"),
        (files, local.url, InputError, "holds no objects; check the prefix"),
        (store, f"s3://no-such-{uuid.uuid4().hex[:8]}/p/", ConfigError, "cannot list the source"),
        (files, str(tmp_path / "missing"), InputError, "is not a folder"),
        (store, "gs://bucket/p/", InputError, "has the scheme 'gs'"),
        (store, store.url + "/", InputError, "overlaps the store"),
        (files, str(tmp_path / "file-store"), InputError, "overlaps the store"),
        (files, str(files.cache_dir), InputError, "overlaps the store"),
    ]
    for target, url, error, message in cases:
        with pytest.raises(error, match=message):
            target.commit("images", url, by_reference=True)
    # (SeaweedFS refuses keys with '.' or '..' segments and folds '//' and '\\' into '/': the names the path
    # rules refuse are made in a folder.)
    local.write("back\\slash.txt", b"1")
    with pytest.raises(InputError, match=r"holds a name a version cannot hold \(lists the path 'back\\\\slash\.txt'"):
        files.commit("images", local.url, by_reference=True)
    for target in (store, files):
        with pytest.raises(NotFoundError):
            target.show("images")
        assert not list(target.backend.list(layout.REFERENCES))


def test_a_key_that_changes_or_vanishes_between_list_and_head_commits_nothing(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A race a real server cannot be made to lose on cue: the key is rewritten (then deleted) by a real PUT
    (DELETE) just before the commit's own HEAD of it."""
    place = _s3_place(seaweedfs, make_store, versioned=True)
    _fill(place)
    store = place.store()
    real_head = S3Backend.head
    for meddle, what in ((lambda key: place.write(key, b"rewritten"), "changed"), (place.remove, "vanished")):

        def head(self: S3Backend, key: str, meddle: Callable[[str], Any] = meddle) -> Any:
            if key == "d/b.txt":
                meddle(key)
            return real_head(self, key)

        monkeypatch.setattr(S3Backend, "head", head)
        with pytest.raises(ConflictError, match=rf"{place.url}d/b\.txt {what} while it was imported; run the commit"):
            store.commit("images", place.url, by_reference=True)
        place.write("d/b.txt", FILES["d/b.txt"])
    with pytest.raises(NotFoundError):
        store.show("images")
    assert not list(store.backend.list(layout.REFERENCES))


def test_a_multipart_object_is_hashed_by_one_read(seaweedfs: SeaweedFS, make_store: Callable[..., Store]) -> None:
    """A multipart ETag is no md5: the commit reads the object once (not into the cache) to hash it."""
    place = _s3_place(seaweedfs, make_store, versioned=True)
    client, bucket = place.extra["client"], place.extra["bucket"]
    part = os.urandom(5 * 1024 * 1024)
    upload = client.create_multipart_upload(Bucket=bucket, Key="data/big.bin")["UploadId"]
    etags = [
        client.upload_part(Bucket=bucket, Key="data/big.bin", UploadId=upload, PartNumber=n, Body=part)["ETag"]
        for n in (1, 2)
    ]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="data/big.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in zip((1, 2), etags, strict=True)]},
    )
    store = place.store()
    version = store.commit("big", place.url, by_reference=True)
    assert _cached_files(store) == []
    table, _ = store.catalog.references(version)
    assert table.entries[0].etag is not None and table.entries[0].etag.endswith("-2")
    assert place.store().open(version, "big.bin").read() == part * 2


def test_a_gitfree_before_references_refuses_them_by_their_format(place: Place, tmp_path: Path) -> None:
    """R3. The records of a version by reference and its latest.json say format 2, which the format check of a
    gitfree before references (``_newer_format`` with its newest, 1) refuses; an uploaded version's record
    holds no ``reference`` key, so that gitfree reads it as before."""
    _fill(place)
    store = place.store()
    version = store.commit("images", place.url, by_reference=True)
    record, _ = store.backend.get(layout.version_key("images", version.number))
    latest, _ = store.backend.get(layout.latest_key("images"))
    assert _newer_format(json.loads(record)) == 2
    assert _newer_format(json.loads(latest)) == 2
    assert _newer_format(json.loads(record), 2) is None
    uploaded = store.commit("other", write_tree(tmp_path / "upload", FILES))
    raw, _ = store.backend.get(layout.version_key("other", uploaded.number))
    assert json.loads(raw)["format"] == 1 and "reference" not in json.loads(raw)


def test_a_table_that_is_not_the_records_is_refused(place: Place) -> None:
    _fill(place)
    store = place.store()
    version = store.commit("images", place.url, by_reference=True)
    assert version.reference is not None
    key = layout.reference_key(version.reference.table)
    raw, _ = store.backend.get(key)
    store.backend.put(key, raw.replace(b"hello", b"HELLO") if b"hello" in raw else raw + b" ")
    with pytest.raises(IntegrityError, match=rf"the reference table {key} of images@1 does not match its hash"):
        place.store().open("images@1", "a.csv")
    store.backend.delete(key)
    with pytest.raises(IntegrityError, match=rf"the reference table {key} of images@1 is missing"):
        place.store().files("images@1")


def test_export_of_a_version_by_reference_refuses(place: Place, tmp_path: Path) -> None:
    _fill(place)
    store = place.store()
    store.commit("images", place.url, by_reference=True)
    with pytest.raises(InputError, match=r"images@1 is versioned by reference .*run `gitfree materialize images@1`"):
        store.export_dvc("images@1", tmp_path / "images.dvc")
    assert not (tmp_path / "images.dvc").exists()


def test_materialize_copies_the_files_into_the_store_and_then_export_works(place: Place, tmp_path: Path) -> None:
    _fill(place)
    store = place.store()
    version = store.commit("images", place.url, by_reference=True)
    assert store.materialize("images@1") == version
    assert _file_objects(store) == {e.md5 for e in store.files(version)}
    assert "md5: " in store.export_dvc("images@1", tmp_path / "images.dvc").read_text()
    for path in FILES:  # the source goes away: the version reads from the store
        place.remove(path)
    assert read_tree(place.store().pull("images@1", tmp_path / "out")) == FILES
    assert store.materialize("images@1") == version  # again: nothing to copy


def test_materialize_of_a_drifted_source_uploads_nothing_of_what_changed(drifting: Place) -> None:
    _fill(drifting)
    store = drifting.store()
    store.commit("images", drifting.url, by_reference=True)
    drifting.write("d/b.txt", b"not what was committed")
    with pytest.raises(IntegrityError, match=r"d/b\.txt changed since it was committed"):
        drifting.store().materialize("images@1")
    assert all(store.backend.get(layout.object_key(md5))[0] in FILES.values() for md5 in _file_objects(store))


def test_the_cli_commits_by_reference(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = _s3_place(seaweedfs, make_store, versioned=True)
    _fill(place)
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITFREE_STORE", s3_url)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cli-cache"))
    runner = CliRunner()
    done = runner.invoke(cli, ["commit", "images", place.url, "--by-reference"])
    assert (done.exit_code, done.output) == (0, f"committed images@1 by reference to {place.url}: 4 files, 10.0 KiB\n")
    again = runner.invoke(cli, ["commit", "images", place.url, "--by-reference"])
    assert (again.exit_code, again.output) == (0, "unchanged: images@1 already holds this data (4 files, 10.0 KiB)\n")
    done = runner.invoke(cli, ["materialize", "images@1"])
    assert (done.exit_code, done.output) == (0, f"materialized images@1: its 4 files are in {s3_url}\n")
    empty = runner.invoke(cli, ["commit", "images", place.url + "nothing/", "--by-reference"])
    assert empty.exit_code == 2
    assert empty.output.strip().splitlines() == [f"error: {place.url}nothing/ holds no objects; check the prefix"]


def test_a_record_naming_a_table_of_other_files_or_another_source_is_refused(place: Place) -> None:
    """A table is checked against the record that names it: the listing it makes must be the record's pointer,
    and its source the record's (a forged record naming a real table of other files reads nothing)."""
    _fill(place)
    store = place.store()
    first = store.commit("images", place.url, by_reference=True)
    place.write("d/b.txt", b"other")
    second = store.commit("images", place.url, by_reference=True)
    assert first.reference is not None and second.reference is not None
    forged = first.model_copy(update={"number": 3, "parent": 2, "reference": second.reference})
    store.catalog.create(layout.version_key("images", 3), forged)
    with pytest.raises(IntegrityError, match=r"does not make its listing .* it was not used"):
        place.store().open("images@3", "a.csv")
    elsewhere = first.reference.model_copy(update={"source": place.url + "elsewhere/"})
    store.catalog.create(
        layout.version_key("images", 4), first.model_copy(update={"number": 4, "reference": elsewhere})
    )
    with pytest.raises(IntegrityError, match=r"names .*, not images@4's source"):
        place.store().open("images@4", "a.csv")


def test_gc_and_fsck_take_versions_by_reference(place: Place) -> None:
    """fsck does not count a referenced file missing from files/md5/ (it is its source's), but still needs the
    listing there; GC drops a version by reference like any other, deleting its listing and never a source file."""
    _fill(place)
    store = place.store()
    first = store.commit("images", place.url, by_reference=True)
    place.write("d/b.txt", b"changed")
    store.commit("images", place.url, by_reference=True)
    # A folder keeps no old bytes: images@1's d/b.txt drifted (a versioned bucket still holds them).
    drifted = [] if place.kind == "s3" else [("drift", "images@1", f"{place.url}d/b.txt")]
    assert [(p.kind, p.ref, p.key) for p in store.fsck().problems] == drifted
    report = store.gc(keep_last=1, grace=timedelta(0))
    assert (report.versions_deleted, report.deleted) == (["images@1"], [layout.object_key(first.md5)])
    assert place.store().open("images@2", "a.csv").read() == FILES["a.csv"]  # the source is untouched
    store.backend.delete(layout.object_key(store.show("images@2").md5))
    assert [p.kind for p in store.fsck().problems] == ["missing_listing"]


@pytest.mark.parametrize("step", ["table", "record"])
def test_a_commit_by_reference_killed_before_its_record_commits_nothing(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path, step: str
) -> None:
    """R5: kill -9 after the table was created, or just before the record: no version; the next commit makes
    version 1; GC judges the killed writer's lease dead and fsck is clean."""
    place = _s3_place(seaweedfs, make_store, versioned=True)
    _fill(place)
    proc = SPAWN.Process(
        target=commit_by_reference_and_crash,
        args=(s3_url, seaweedfs.store_options(), str(tmp_path / "crash"), place.url, step),
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL, f"the fault at {step} was not reached (exit {proc.exitcode})"
    store = place.store()
    with pytest.raises(NotFoundError):
        store.show("images")
    # What it leaves is a table no record names (and its journaled listing).
    assert len(list(store.backend.list(layout.REFERENCES))) == 1
    version = store.commit("images", place.url, by_reference=True)
    assert (version.number, version.created) == (1, True)
    assert store.gc(grace=timedelta(0)).leases_live == 0
    assert store.fsck().problems == []
    assert read_tree(place.store().pull("images", tmp_path / "out")) == FILES


def test_a_no_op_import_costs_the_list_and_a_constant_and_1_percent_changed_heads_only_those(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path
) -> None:
    """R4, counted on the wire (the counting proxy): a no-op import of N objects is the LIST of the source (one
    request per 1,000 keys) plus a constant number of GETs, and reads no object; with 1% changed, only those
    are HEADed and none is read (a single-part ETag is the md5). N is 1,000 (10,000 with GITFREE_RELIABILITY=full)."""
    n = 10_000 if FULL else 1_000
    place = _s3_place(seaweedfs, make_store, versioned=True)
    client, bucket = seaweedfs.client(max_pool_connections=32), place.extra["bucket"]

    def put(i: int, body: bytes | None = None) -> None:
        client.put_object(Bucket=bucket, Key=f"data/{i // 100:03d}/{i:05d}.txt", Body=body or f"object {i}".encode())

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(put, range(n)))
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "first", **options).commit("many", place.url, by_reference=True)
    with CountingProxy(seaweedfs.s3_port) as proxy:
        store = Store(s3_url, cache_dir=tmp_path / "worker", **{**options, "endpoint_url": proxy.endpoint})
        proxy.take()
        started = time.monotonic()
        same = store.commit("many", place.url, by_reference=True)
        noop, noop_s = proxy.take(), time.monotonic() - started
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda i: put(i, b"changed %d" % i), range(0, n, 100)))
        proxy.take()
        changed = store.commit("many", place.url, by_reference=True)
        few = proxy.take()
    assert (same.number, same.created, changed.number, changed.created) == (1, False, 2, True)
    lists = -(-n // 1000)
    # The head (latest.json, the record it names, the number after it: none), the head's table; the LIST pages.
    assert noop.requests == {"GET": 4 + lists}, noop.as_dict()
    assert noop.bytes_down < 400 * n, noop.as_dict()  # the table and the LIST, no object
    assert few.requests["HEAD"] == n // 100, few.as_dict()
    print(
        f"\nno-op import by reference of {n} objects: {noop.total} requests ({dict(noop.requests)}), "
        f"{noop.bytes_down} B down, {noop_s:.2f} s; 1% changed: {few.total} requests ({dict(few.requests)})"
    )


def test_concurrent_imports_make_one_version_of_one_source_and_gap_free_versions_of_many(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """Workers released together: of the same source, the same table (one create wins, the others find it) and
    one version, created by exactly one; of different sources, one version each, numbers 1..N without a gap."""
    places = [_s3_place(seaweedfs, make_store, versioned=True) for _ in range(4)]
    for i, place in enumerate(places):
        _fill(place, {**FILES, "which.txt": str(i).encode()})
    barrier = threading.Barrier(4)

    def commit(url: str) -> tuple[int, bool]:
        store = places[0].store()
        barrier.wait(timeout=60)
        version = store.commit("images", url, by_reference=True)
        return version.number, bool(version.created)

    with ThreadPoolExecutor(max_workers=4) as pool:
        same = list(pool.map(commit, [places[0].url] * 4))
    assert sorted(same) == [(1, False), (1, False), (1, False), (1, True)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        many = list(pool.map(commit, [p.url for p in places[1:]] + [places[0].url]))
    created = sorted(n for n, made in many if made)
    assert created == list(range(2, 2 + len(created))) and len(created) >= 3
    reader = places[0].store()
    seen = {reader.open(v, "which.txt").read() for v in reader.log("images")}
    assert seen == {b"0", b"1", b"2", b"3"}


def test_gc_deletes_nothing_that_lies_in_the_source_of_a_kept_version(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R2, the explicit check: a version by reference whose source lies inside the store's own files/md5/ (the
    commit refuses one; here its guard is bypassed, as a forged record would) keeps the objects it names there
    when the uploaded version that wrote them is dropped; GC counts what only the check kept in ``in_sources``."""
    store.commit("up", write_tree(tmp_path / "v1", {"a.txt": b"one", "b.txt": b"two"}))
    monkeypatch.setattr(Store, "_guard_reference", lambda self, source: None)
    inside = store.commit("inside", store.url + "/files/md5/", by_reference=True)
    assert inside.nfiles == 3  # the two files and up@1's listing
    store.commit("up", write_tree(tmp_path / "v2", {"c.txt": b"three"}))
    report = store.gc(keep_last=1, grace=timedelta(0))
    assert report.versions_deleted == ["up@1"]
    # The two files are roots anyway (a kept listing's md5s are); up@1's listing is named by its md5 less ".dir",
    # so only the check keeps it.
    assert report.in_sources == 1 and report.deleted == [], report
    reader = Store(settings=store.settings, cache_dir=tmp_path / "reader")
    read = sorted(reader.open(inside, e.path).read() for e in reader.files(inside))
    assert read[0].startswith(b'[{"md5"') and read[1:] == [b"one", b"two"]  # up@1's listing, and its files
