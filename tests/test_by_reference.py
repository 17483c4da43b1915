"""Versions by reference (docs/design.md, "Versions by reference"): commit files where they are, on a real
SeaweedFS bucket (versioning on or off) and a local folder, and read them back hash-checked, pinned to what
was committed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
import pytest
from _workers import commit_by_reference_and_crash
from click.testing import CliRunner
from figures import FULL
from helpers import Place, read_tree, write_tree

from gitfree import Store
from gitfree.cli import cli
from gitfree.testing import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, CountingProxy, FakeGCS, SeaweedFS
from gitfree.versioning import ConfigError, ConflictError, InputError, IntegrityError, NotFoundError, layout
from gitfree.versioning.backends import AzureBackend, GCSBackend, S3Backend
from gitfree.versioning.catalog import _newer_format
from gitfree.versioning.fs import GitfreeFileSystem

SPAWN = multiprocessing.get_context("spawn")
FILES = {
    "a.csv": b"x,y\n1,2\n",
    "d/b.txt": b"hello b",
    "d/e/c.bin": bytes(range(256)) * 40,
    "z.json": b"{}",
}


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


def _az_place(azurite: Azurite, make_store: Callable[..., Store]) -> Place:
    """A prefix of Azurite's test container (Azurite keeps no blob versions: an overwrite is drift)."""
    from obstore.store import AzureStore

    blobs = AzureStore(
        azurite.container,
        account_name=AZURITE_ACCOUNT,
        account_key=AZURITE_KEY,
        endpoint=azurite.endpoint,
        client_options={"allow_http": True},
    )
    prefix = f"ref-{uuid.uuid4().hex[:12]}/data"
    return Place(
        "az",
        f"az://{azurite.container}/{prefix}/",
        lambda path, data: obstore.put(blobs, f"{prefix}/{path}", data),
        lambda path: obstore.delete(blobs, f"{prefix}/{path}"),
        lambda **kw: make_store("az", **kw),
        {"blobs": blobs, "prefix": prefix},
    )


def _gs_place(fake_gcs: FakeGCS, make_store: Callable[..., Store], *, versioned: bool) -> Place:
    """A bucket of its own on fake-gcs-server, with object versioning on (old generations kept) or off."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="gitfree",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": fake_gcs.endpoint},
    )
    bucket = client.bucket(f"ref-{uuid.uuid4().hex[:12]}")
    bucket.versioning_enabled = versioned
    bucket = client.create_bucket(bucket)
    return Place(
        "gs",
        f"gs://{bucket.name}/data/",
        lambda path, data: bucket.blob(f"data/{path}").upload_from_string(data),
        lambda path: bucket.blob(f"data/{path}").delete(),
        lambda **kw: make_store("gs", **kw),
        {"bucket": bucket},
    )


def _cloud_place(kind: str, request: pytest.FixtureRequest, make_store: Callable[..., Store]) -> Place:
    """A versioned S3 bucket, an Azurite prefix or a versioned GCS bucket, by ``kind``."""
    if kind == "az":
        return _az_place(request.getfixturevalue("azurite"), make_store)
    if kind == "gs":
        return _gs_place(request.getfixturevalue("fake_gcs"), make_store, versioned=True)
    return _s3_place(request.getfixturevalue("seaweedfs"), make_store, versioned=True)


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


@pytest.fixture(params=["s3", "file", "az", "gs"])
def place(
    request: pytest.FixtureRequest, seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> Place:
    """A versioned S3 bucket, a shared folder, an Azurite prefix (in an az:// store) or a versioned GCS bucket
    (in a gs:// store)."""
    if request.param == "s3":
        return _s3_place(seaweedfs, make_store, versioned=True)
    if request.param == "az":
        return _az_place(request.getfixturevalue("azurite"), make_store)
    if request.param == "gs":
        return _gs_place(request.getfixturevalue("fake_gcs"), make_store, versioned=True)
    return _file_place(tmp_path, make_store)


@pytest.fixture(params=["s3", "file", "az", "gs"])
def drifting(
    request: pytest.FixtureRequest, seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> Place:
    """A source that keeps no old bytes: an S3 bucket without versioning, a shared folder, an Azurite prefix or
    a GCS bucket without versioning."""
    if request.param == "s3":
        return _s3_place(seaweedfs, make_store, versioned=False)
    if request.param == "az":
        return _az_place(request.getfixturevalue("azurite"), make_store)
    if request.param == "gs":
        return _gs_place(request.getfixturevalue("fake_gcs"), make_store, versioned=False)
    return _file_place(tmp_path, make_store)


def _fill(place: Place, files: dict[str, bytes] = FILES) -> None:
    place.fill(files)


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
        (store, "hdfs://nn/p/", InputError, "has the scheme 'hdfs'"),
        (store, "gs://bucket/p/", InputError, "is on Google Cloud Storage and the store s3://"),
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
    shown = runner.invoke(cli, ["show", "images@1"], env={"COLUMNS": "200"})
    assert f"source   {place.url} (by reference)" in shown.output.splitlines()[7], shown.output
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
    # A folder (and Azurite, which versions no blob) keeps no old bytes: images@1's d/b.txt drifted (a versioned
    # S3 bucket still holds them by VersionId, a versioned GCS bucket by generation).
    drifted = [] if place.kind in ("s3", "gs") else [("drift", "images@1", f"{place.url}d/b.txt")]
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


@pytest.mark.parametrize("kind", ["s3", "az", "gs"])
def test_concurrent_imports_make_one_version_of_one_source_and_gap_free_versions_of_many(
    kind: str, request: pytest.FixtureRequest, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """Workers released together: of the same source, the same table (one create wins, the others find it) and
    one version, created by exactly one; of different sources, one version each, numbers 1..N without a gap
    (S3 on SeaweedFS; an az:// store and sources on Azurite; a gs:// store and sources on fake-gcs-server)."""
    places = [_cloud_place(kind, request, make_store) for _ in range(4)]
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


# ---------------------------------------------------------------------------- az:// and gs:// sources


def _container_sas(container: str, permissions: str = "racwdl") -> str:
    """A service SAS for one Azurite container, signed with the development key (Azure's string-to-sign of
    version 2021-08-06)."""
    import base64
    import hashlib
    import hmac
    from urllib.parse import urlencode

    version, expiry = "2021-08-06", "2099-01-01T00:00:00Z"
    fields = [permissions, "", expiry, f"/blob/{AZURITE_ACCOUNT}/{container}", "", "", "", version, "c"]
    to_sign = "\n".join(fields + [""] * 7)
    signature = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    return urlencode({"sv": version, "se": expiry, "sr": "c", "sp": permissions, "sig": base64.b64encode(signature)})


def _spy(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[str]:
    """The keys ``cls.name`` (a backend's object read) is called with, the real method still doing the work."""
    calls: list[str] = []
    real = getattr(cls, name)

    def spied(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(key)
        return real(self, key, *args, **kwargs)

    monkeypatch.setattr(cls, name, spied)
    return calls


def test_an_azure_blob_put_in_blocks_is_hashed_by_one_read_and_a_put_blob_by_its_content_md5(
    azurite: Azurite, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure sets Content-MD5 for a single Put Blob, and none for a blob put as a block list (Put Block + Put
    Block List, as large uploads go): List Blobs tells them apart, and only the block blob is read (once,
    streamed, pinned with If-Match, never cached) to hash it. A no-op reads nothing; a changed Put Blob neither."""
    place = _az_place(azurite, make_store)
    _fill(place)
    big = os.urandom(6 * 1024 * 1024)
    blobs, prefix = place.extra["blobs"], place.extra["prefix"]
    obstore.put(blobs, f"{prefix}/big.bin", big, use_multipart=True, chunk_size=5 * 1024 * 1024)
    listed = {b.key: b.md5 for b in AzureBackend(azurite.container, prefix, place.store().settings).blobs("")}
    assert listed == {**{p: hashlib.md5(d).hexdigest() for p, d in FILES.items()}, "big.bin": None}
    reads = _spy(monkeypatch, AzureBackend, "read_pinned")
    store = place.store()
    version = store.commit("images", place.url, by_reference=True)
    assert reads == ["big.bin"]
    assert _cached_files(store) == []
    table, _ = store.catalog.references(version)
    assert {e.path: e.md5 for e in table.entries}["big.bin"] == hashlib.md5(big).hexdigest()
    reads.clear()
    assert not store.commit("images", place.url, by_reference=True).created
    place.write("d/b.txt", b"hello again")
    assert store.commit("images", place.url, by_reference=True).number == 2
    assert reads == []
    reader = place.store()
    assert reader.open("images@1", "big.bin").read() == big
    assert reader.open("images@2", "d/b.txt").read() == b"hello again"
    with pytest.raises(IntegrityError, match=r"d/b\.txt changed since it was committed by reference: ETag was "):
        reader.open("images@1", "d/b.txt")  # Azurite keeps no blob versions: the old bytes are gone


def test_a_composite_gcs_object_is_hashed_by_one_read_and_a_generation_keeps_the_committed_bytes(
    fake_gcs: FakeGCS, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GCS gives a composed object no md5Hash (it says componentCount instead), so it is read once, pinned to
    its generation, to hash it; any other object's md5Hash is its md5. fake-gcs-server gives a composed object
    an md5Hash and no componentCount, so the test has ``Blob.component_count`` say what GCS says for that one
    object (the only thing patched). In a versioned bucket the generation keeps the committed bytes readable
    after an overwrite and a delete; only a changed object is looked at again."""
    from google.cloud import storage

    place = _gs_place(fake_gcs, make_store, versioned=True)
    _fill(place)
    bucket, parts = place.extra["bucket"], [os.urandom(300_000), os.urandom(200_000)]
    for i, part in enumerate(parts):
        place.write(f"parts/{i}", part)
    bucket.blob("data/big.bin").compose([bucket.blob("data/parts/0"), bucket.blob("data/parts/1")])
    real_count = storage.Blob.component_count
    monkeypatch.setattr(
        storage.Blob,
        "component_count",
        property(lambda blob: 2 if blob.name == "data/big.bin" else real_count.fget(blob)),
    )
    reads = _spy(monkeypatch, GCSBackend, "read_generation")
    store = place.store()
    first = store.commit("images", place.url, by_reference=True)
    assert reads == ["big.bin"]
    assert _cached_files(store) == []
    table, _ = store.catalog.references(first)
    assert {e.path: e.md5 for e in table.entries}["big.bin"] == hashlib.md5(b"".join(parts)).hexdigest()
    assert all(e.version_id and e.version_id.isdigit() for e in table.entries)
    reads.clear()
    assert not store.commit("images", place.url, by_reference=True).created
    place.write("d/b.txt", b"hello again")
    second = store.commit("images", place.url, by_reference=True)
    assert (second.number, reads) == (2, [])
    place.remove("d/b.txt")
    reader = place.store()
    assert reader.open(first, "d/b.txt").read() == b"hello b"  # pinned by its generation
    assert reader.open(second, "d/b.txt").read() == b"hello again"
    assert reader.open(first, "big.bin").read() == b"".join(parts)
    assert reader.peek(first, "big.bin", 299_998, 4) == parts[0][-2:] + parts[1][:2]


@pytest.mark.parametrize("kind", ["az", "gs"])
def test_a_blob_that_changes_while_it_is_hashed_commits_nothing(
    kind: str, request: pytest.FixtureRequest, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A race a real server cannot be made to lose on cue: the blob (a block blob; a composite object) is
    rewritten by a real PUT just before the commit's one read of it, which is pinned to what was listed (If-Match
    on the ETag; the generation), so the commit stops with ConflictError and writes nothing."""
    cls: type[AzureBackend | GCSBackend]
    if kind == "az":
        place = _az_place(request.getfixturevalue("azurite"), make_store)
        obstore.put(place.extra["blobs"], f"{place.extra['prefix']}/big.bin", b"x" * 100, use_multipart=True)
        cls, name = AzureBackend, "read_pinned"
    else:
        from google.cloud import storage

        place = _gs_place(request.getfixturevalue("fake_gcs"), make_store, versioned=False)
        place.write("big.bin", b"x" * 100)
        monkeypatch.setattr(storage.Blob, "component_count", property(lambda blob: 2))
        cls, name = GCSBackend, "read_generation"
    real = getattr(cls, name)

    def meddled(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        place.write(key, b"rewritten")
        return real(self, key, *args, **kwargs)

    monkeypatch.setattr(cls, name, meddled)
    store = place.store()
    with pytest.raises(ConflictError, match=rf"^{place.url}big\.bin changed while it was imported; run the commit"):
        store.commit("images", place.url, by_reference=True)
    with pytest.raises(NotFoundError):
        store.show("images")
    assert not list(store.backend.list(layout.REFERENCES))


@pytest.mark.parametrize("kind", ["az", "gs"])
def test_a_no_op_import_from_azure_or_gcs_costs_the_list_and_a_constant(
    kind: str,
    request: pytest.FixtureRequest,
    make_store: Callable[..., Store],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R4 on the wire (the counting proxy in front of the emulator): a no-op import of 300 objects is the
    head's and the table's GETs plus one LIST, and reads no object."""
    n, size = 300, 8192
    server: Azurite | FakeGCS = request.getfixturevalue("azurite" if kind == "az" else "fake_gcs")
    if isinstance(server, Azurite):
        place = _az_place(server, make_store)
    else:
        place = _gs_place(server, make_store, versioned=False)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: place.write(f"{i // 100:03d}/{i:05d}.bin", os.urandom(size)), range(n)))
    url = place.store().url
    monkeypatch.setattr(AzureBackend, "list_page", 100)  # Azure's pages hold 5,000: make 3 of them
    assert place.store().commit("many", place.url, by_reference=True).nfiles == n
    with CountingProxy(server.port) as proxy:
        endpoint = f"{proxy.endpoint}/{AZURITE_ACCOUNT}" if kind == "az" else proxy.endpoint
        store = Store(url, cache_dir=tmp_path / "worker", **{**server.store_options(), "endpoint_url": endpoint})
        proxy.take()
        same = store.commit("many", place.url, by_reference=True)
        noop = proxy.take()
    assert (same.number, same.created) == (1, False)
    # The head (latest.json, the record it names, the number after it: none), the head's table, the LIST (Azure:
    # 3 pages of 100; GCS: 1 of 1,000). On GCS
    # also, whatever N: google-cloud-storage's own GET of each bucket's metadata (once per bucket and client, in
    # the background, for its tracing cache) and the backend's "does the bucket exist" after a 404 (once per
    # backend), up to 4 more.
    assert noop.requests.keys() == {"GET"}, noop.as_dict()
    assert (noop.requests["GET"] == 4 + 3) if kind == "az" else (5 <= noop.requests["GET"] <= 9), noop.as_dict()
    assert noop.bytes_down < size * n // 4, noop.as_dict()  # no object: they hold 2.4 MiB
    print(f"\nno-op import by reference of {n} objects on {kind}: {noop.as_dict()}")


def test_bad_azure_and_gcs_sources_are_one_clear_error_and_nothing_is_written(
    azurite: Azurite, fake_gcs: FakeGCS, make_store: Callable[..., Store]
) -> None:
    az, gs, s3, files = make_store("az"), make_store("gs"), make_store("s3"), make_store("file")
    tag = uuid.uuid4().hex[:8]
    cases: list[tuple[Store, str, type[Exception], str]] = [
        (az, f"az://{azurite.container}/empty-{tag}/", InputError, "holds no objects; check the prefix"),
        (gs, f"gs://{fake_gcs.bucket}/empty-{tag}/", InputError, "holds no objects; check the prefix"),
        (az, f"az://gone-{tag}/p/", ConfigError, f"cannot list the source az://gone-{tag}/p/: the container"),
        (
            gs,
            f"gs://gone-{tag}/p/",
            ConfigError,
            f"cannot list the source gs://gone-{tag}/p/: the bucket .*fix the URL$",
        ),
        (az, "az://Bad_Name/p/", InputError, "^the source 'az://Bad_Name/p/': 'Bad_Name' is not an Azure container"),
        (gs, "gs://goog-x/p/", InputError, "^the source 'gs://goog-x/p/': 'goog-x' is not a Google Cloud Storage"),
        (az, "az://key@container/p/", InputError, "holds credentials"),
        (az, az.url + "/", InputError, "overlaps the store"),
        (gs, f"gs://{fake_gcs.bucket}/", InputError, "overlaps the store"),
        (
            s3,
            "az://container/p/",
            InputError,
            "^the source az://container/p/ is on Azure Blob Storage and the store s3",
        ),
        (files, "gs://bucket/p/", InputError, "is on Google Cloud Storage and the store /.* is not"),
        (az, "gs://bucket/p/", InputError, "a gs:// source needs a gs:// store"),
        (gs, "az://container/p/", InputError, "an az:// source needs an az:// store"),
    ]
    for target, url, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            target.commit("images", url, by_reference=True)
        assert "\n" not in str(caught.value)
    for target in (az, gs, s3, files):
        with pytest.raises(NotFoundError):
            target.show("images")
        assert not list(target.backend.list(layout.REFERENCES))


def test_azure_credentials_that_cannot_list_the_source_are_one_clear_error(
    azurite: Azurite, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """A SAS token for the store's container lists and reads a source there, and is denied (403) another
    container: "cannot list the source", nothing written."""
    other = f"other-{uuid.uuid4().hex[:8]}"
    azurite.create_container(other)
    place = _az_place(azurite, make_store)
    _fill(place)
    sas = {"endpoint_url": azurite.endpoint, "azure_account_name": AZURITE_ACCOUNT}
    sas["azure_sas_token"] = _container_sas(azurite.container)
    store = Store(place.store().url, cache_dir=tmp_path / "sas", **sas)  # type: ignore[arg-type]
    assert store.commit("images", place.url, by_reference=True).nfiles == len(FILES)
    assert store.open("images", "d/b.txt").read() == b"hello b"
    with pytest.raises(ConfigError, match=rf"^cannot list the source az://{other}/p/: .* denied access .*\(HTTP 403\)"):
        store.commit("other", f"az://{other}/p/", by_reference=True)
    with pytest.raises(NotFoundError):
        store.show("other")


@pytest.mark.parametrize("kind", ["az", "gs"])
def test_the_cli_commits_by_reference_from_azure_and_gcs(
    kind: str,
    request: pytest.FixtureRequest,
    make_store: Callable[..., Store],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server: Azurite | FakeGCS = request.getfixturevalue("azurite" if kind == "az" else "fake_gcs")
    place = (
        _az_place(server, make_store) if isinstance(server, Azurite) else _gs_place(server, make_store, versioned=True)
    )
    _fill(place)
    url = place.store().url
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITFREE_STORE", url)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cli-cache"))
    runner = CliRunner()
    done = runner.invoke(cli, ["commit", "images", place.url, "--by-reference"])
    assert (done.exit_code, done.output) == (0, f"committed images@1 by reference to {place.url}: 4 files, 10.0 KiB\n")
    again = runner.invoke(cli, ["commit", "images", place.url, "--by-reference"])
    assert (again.exit_code, again.output) == (0, "unchanged: images@1 already holds this data (4 files, 10.0 KiB)\n")
    shown = runner.invoke(cli, ["cat", "images@1", "d/b.txt"])
    assert (shown.exit_code, shown.output) == (0, "hello b")
    done = runner.invoke(cli, ["materialize", "images@1"])
    assert (done.exit_code, done.output) == (0, f"materialized images@1: its 4 files are in {url}\n")
    other = "gs://bucket/p/" if kind == "az" else "az://container/p/"
    refused = runner.invoke(cli, ["commit", "images", other, "--by-reference"])
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1, refused.output


def _set_content_md5(azurite: Azurite, blob: str, md5: bytes) -> None:
    """Set Blob Properties with a Content-MD5 of the caller's choosing (Azure stores it unchecked), signed with
    the development key."""
    import base64
    import hmac
    import urllib.request
    from email.utils import formatdate
    from urllib.parse import quote

    headers = {
        "x-ms-blob-content-md5": base64.b64encode(md5).decode(),
        "x-ms-date": formatdate(usegmt=True),
        "x-ms-version": "2021-08-06",
    }
    path = f"/{AZURITE_ACCOUNT}/{azurite.container}/{quote(blob)}"
    canonical = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items()))
    to_sign = "PUT\n" + "\n" * 11 + canonical + f"/{AZURITE_ACCOUNT}{path}\ncomp:properties"
    signature = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(signature).decode()}"
    url = azurite.endpoint.rsplit("/", 1)[0] + path + "?comp=properties"
    request = urllib.request.Request(url, method="PUT", headers={**headers, "Content-Length": "0"})  # noqa: S310
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - http://127.0.0.1 only


def test_a_content_md5_a_client_set_falsely_never_yields_other_bytes(
    azurite: Azurite, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """Azure keeps whatever Content-MD5 a client sets on a blob (Set Blob Properties, or a block list's
    x-ms-blob-content-md5) without checking it, and a commit by reference takes it for the md5 as it takes an
    S3 ETag. A false one makes a version whose reads fail hash-checked (R1), naming the key; nothing reaches
    the cache or the destination, and the other files read."""
    place = _az_place(azurite, make_store)
    _fill(place)
    _set_content_md5(azurite, f"{place.extra['prefix']}/d/b.txt", hashlib.md5(b"not these bytes").digest())
    place.store().commit("images", place.url, by_reference=True)
    reader = place.store()
    with pytest.raises(
        IntegrityError, match=rf"{place.url}d/b\.txt changed since it was committed .*md5 [0-9a-f]{{32}}"
    ):
        reader.open("images@1", "d/b.txt")
    with pytest.raises(IntegrityError):
        reader.pull("images@1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert {p.read_bytes() for p in _cached_files(reader)} <= set(FILES.values()) - {FILES["d/b.txt"]}
    assert reader.open("images@1", "a.csv").read() == FILES["a.csv"]


@pytest.mark.parametrize("kind", ["az", "gs"])
def test_names_with_spaces_and_unicode_and_the_names_a_version_cannot_hold(
    kind: str, request: pytest.FixtureRequest, make_store: Callable[..., Store]
) -> None:
    """A prefix and keys with a space, '+', '%' and non-ASCII letters are listed and read as they are. On GCS a
    key the readers' path rules refuse (a backslash) is one InputError naming it, nothing written; Azure turns a
    backslash in a blob name into '/' itself, so there it is a folder."""
    server: Azurite | FakeGCS = request.getfixturevalue("azurite" if kind == "az" else "fake_gcs")
    if isinstance(server, Azurite):
        place = _az_place(server, make_store)
        place = dataclasses.replace(place, url=place.url.replace("/data/", "/d a+t%é/"))
        prefix = place.extra["prefix"].replace("/data", "/d a+t%é")
        blobs = place.extra["blobs"]
        place.write = lambda path, data: obstore.put(blobs, f"{prefix}/{path}", data)
    else:
        place = _gs_place(server, make_store, versioned=False)
        bucket = place.extra["bucket"]
        place = dataclasses.replace(place, url=place.url.replace("/data/", "/d a+t%é/"))
        place.write = lambda path, data: bucket.blob(f"d a+t%é/{path}").upload_from_string(data)
    names = {"ça va.txt": b"oui", "x+y %41.bin": b"plus", "sub dir/ü.csv": b"1,2"}
    _fill(place, names)
    store = place.store()
    version = store.commit("odd", place.url, by_reference=True)
    assert version.nfiles == 3
    reader = place.store()
    assert {p: reader.open(version, p).read() for p in names} == names
    place.write("back\\slash.txt", b"1")
    if kind == "az":  # Azure (and Azurite) turn a backslash in a blob name into '/'
        assert "back/slash.txt" in {e.path for e in store.files(store.commit("odd", place.url, by_reference=True))}
        return
    with pytest.raises(InputError, match=r"holds a name a version cannot hold \(lists the path 'back\\\\slash\.txt'"):
        store.commit("bad", place.url, by_reference=True)
    with pytest.raises(NotFoundError):
        store.show("bad")


def test_versions_by_reference_take_part_in_lineage(place: Place, tmp_path: Path) -> None:
    """A version by reference made from an uploaded one, and one made from it, are edges of the lineage graph
    like any other: up from the consumer, down from the input, and `stale` once its input moved."""
    _fill(place)
    store = place.store()
    raw = store.commit("raw", write_tree(tmp_path / "raw", {"r.txt": b"raw 1"}))
    images = store.commit("images", place.url, by_reference=True, inputs=[raw.ref])
    model = store.commit("model", write_tree(tmp_path / "model", {"m.bin": b"weights"}), inputs=[images.ref])
    up = store.lineage(model.ref)
    assert {(e.source, e.target) for e in up.edges} == {("raw@1", "images@1"), ("images@1", "model@1")}
    down = store.lineage(raw.ref, direction="down")
    assert {n.ref for n in down.nodes} == {"raw@1", "images@1", "model@1"}
    store.commit("raw", write_tree(tmp_path / "raw", {"r.txt": b"raw 2"}))
    assert [s.ref for s in store.stale(["images"])] == ["images@1"]
