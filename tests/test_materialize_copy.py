"""Materialize by server-side copy, and sources with options of their own (issue 18; docs/design.md,
"Materialize" and "Source options"), on real SeaweedFS servers: the tests' one, and a second one on another
port with credentials of its own (an admin, and a user who may only list)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _workers import materialize_and_crash
from click.testing import CliRunner
from helpers import Place, read_tree

from gitfree import SourceOptions, Store
from gitfree.cli import cli
from gitfree.testing import CountingProxy, SeaweedFS, free_port
from gitfree.versioning import ConfigError, InputError, IntegrityError, layout
from gitfree.versioning.backends import S3Backend

SPAWN = multiprocessing.get_context("spawn")
FILES = {"a.csv": b"x,y\n1,2\n", "d/b.txt": b"hello b", "d/e/c.bin": bytes(range(256)) * 40, "z.json": b"{}"}


def _fill(place: Place, files: dict[str, bytes] = FILES) -> None:
    place.fill(files)


def _cached_files(store: Store) -> list[Path]:
    return [p for p in (store.cache_dir / "files" / "md5").rglob("*") if p.is_file() and p.suffix != ".dir"]


LISTER = ("lister", "lister-s3cret-" + uuid.uuid4().hex[:8])
"""A user of the second server who may list its buckets' keys but not read them."""
READER = ("reader", "reader-s3cret-" + uuid.uuid4().hex[:8])
"""A user of the second server who may list and read."""


@dataclass
class OtherSeaweedFS(SeaweedFS):
    """A second SeaweedFS with identities of its own (``-s3.config``): its admin, and :data:`LISTER`."""

    def command(self, data_dir: Path) -> list[str]:
        config = data_dir / "s3-identities.json"
        everything = ["Admin", "Read", "List", "Tagging", "Write"]
        identities = [
            {"name": "admin", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]},
            {"name": "lister", "credentials": [{"accessKey": LISTER[0], "secretKey": LISTER[1]}]},
            {"name": "reader", "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}]},
        ]
        identities[0]["actions"], identities[1]["actions"] = everything, ["List"]
        identities[2]["actions"] = ["List", "Read"]
        config.write_text(json.dumps({"identities": identities}), encoding="utf-8")
        return [*super().command(data_dir), f"-s3.config={config}"]


@pytest.fixture(scope="module")
def other() -> Iterator[OtherSeaweedFS]:
    server = OtherSeaweedFS(bucket="other-source", access_key="other-admin")
    with server:
        yield server


_BUCKETS: dict[tuple[str, bool], str] = {}
"""One source bucket per server and versioning, shared by these tests (each takes a prefix of its own): every bucket
costs SeaweedFS volumes, and a server whose disk allows few volumes answers InternalError once they run out."""


def _place(seaweedfs: SeaweedFS, make_store: Callable[..., Store], *, versioned: bool) -> Place:
    """A fresh prefix of a source bucket on the tests' SeaweedFS, with versioning on or off."""
    client = seaweedfs.client()
    if (seaweedfs.endpoint, versioned) not in _BUCKETS:
        bucket = f"copy-src-{'v' if versioned else 'u'}-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        if versioned:
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        _BUCKETS[seaweedfs.endpoint, versioned] = bucket
    bucket, prefix = _BUCKETS[seaweedfs.endpoint, versioned], f"p-{uuid.uuid4().hex[:10]}"
    return Place(
        "s3",
        f"s3://{bucket}/{prefix}/",
        lambda path, data: client.put_object(Bucket=bucket, Key=f"{prefix}/{path}", Body=data),
        lambda path: client.delete_object(Bucket=bucket, Key=f"{prefix}/{path}"),
        lambda **kw: make_store("s3", **kw),
        {"client": client, "bucket": bucket, "prefix": prefix},
    )


def _s3(store: Store) -> S3Backend:
    assert isinstance(store.backend, S3Backend)
    return store.backend


def _objects_hold_their_md5(store: Store, client: Any, bucket: str) -> set[str]:
    """The file objects in the store's files/md5/, each checked to hold bytes of the md5 its key names."""
    found = set()
    for oid in store.objects.scan():
        if layout.is_listing(oid):
            continue
        body = client.get_object(Bucket=bucket, Key=f"{store.url.split('/', 3)[3]}/{layout.object_key(oid)}")
        assert hashlib.md5(body["Body"].read(), usedforsecurity=False).hexdigest() == oid
        found.add(oid)
    return found


def _many(n: int) -> dict[str, bytes]:
    return {f"d{i % 4}/f{i:03d}.bin": os.urandom(20_000) + bytes([i % 256]) for i in range(n)}


# ---------------------------------------------------------------------------------------------- server-side copy


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
def test_materialize_copies_each_file_on_the_server_and_downloads_none(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path, versioned: bool
) -> None:
    """N files on the store's endpoint and credentials: N CopyObject requests (one more, the copy-pin probe, when
    the pins are ETags), no object read or uploaded, nothing in the worker cache; then the version reads from
    the store alone (the source deleted) and exports a plain .dvc."""
    n = 40
    files = _many(n)
    place = _place(seaweedfs, make_store, versioned=versioned)
    _fill(place, files)
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "committer", **options).commit("images", place.url, by_reference=True)
    if versioned:  # overwritten since: its VersionId copies the bytes committed, not the key's new ones
        place.write("d1/f001.bin", b"newer bytes")
    with CountingProxy(seaweedfs.s3_port) as proxy:
        store = Store(s3_url, cache_dir=tmp_path / "worker", **{**options, "endpoint_url": proxy.endpoint})
        proxy.take()
        store.materialize("images@1")
        counts = proxy.take()
    probe = 0 if versioned else 1
    assert counts.copies == counts.requests["PUT"] == n + probe, counts.as_dict()
    # The record, the table and the listing's presence; then one HEAD per file (what files/md5/ lacks).
    assert counts.requests["GET"] <= 4 and counts.requests["HEAD"] <= n + 1, counts.as_dict()
    assert counts.bytes_down < sum(map(len, files.values())) // 10, counts.as_dict()
    assert counts.bytes_up < 2_000 * (n + 1), counts.as_dict()  # request heads, no bodies
    assert _cached_files(store) == []
    store = make_store("s3")
    client = seaweedfs.client()
    assert _objects_hold_their_md5(store, client, seaweedfs.bucket) == {e.md5 for e in store.files("images@1")}
    assert "md5: " in store.export_dvc("images@1", tmp_path / "images.dvc").read_text()
    for path in files:
        place.remove(path)
    assert read_tree(make_store("s3").pull("images@1", tmp_path / "out")) == files  # the committed bytes
    print(
        f"\nmaterialize of {n} files ({sum(map(len, files.values()))} B) by server-side copy "
        f"({'VersionId' if versioned else 'ETag'} pins): {counts.total} requests {dict(counts.requests)}, "
        f"{counts.copies} copies, {counts.bytes_down} B down, {counts.bytes_up} B up"
    )


def test_what_a_copy_cannot_vouch_for_is_streamed_and_hash_checked(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multipart object (its ETag is no md5) is streamed and hash-checked, and so is an object over the copy
    limit (lowered here to 30,000 bytes instead of S3's 5 GiB); the others are copied."""
    place = _place(seaweedfs, make_store, versioned=True)
    client, bucket, big = place.extra["client"], place.extra["bucket"], f"{place.extra['prefix']}/big.bin"
    part = os.urandom(5 * 1024 * 1024)
    upload = client.create_multipart_upload(Bucket=bucket, Key=big)["UploadId"]
    etags = [
        client.upload_part(Bucket=bucket, Key=big, UploadId=upload, PartNumber=n, Body=part + bytes([n]))["ETag"]
        for n in (1, 2)
    ]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=big,
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in zip((1, 2), etags, strict=True)]},
    )
    _fill(place, {"small.txt": b"small"})
    store = place.store()
    copies: list[str] = []
    real = _s3(store)._client.copy_object

    def counted(**kwargs: Any) -> Any:
        copies.append(kwargs["CopySource"]["Key"])
        return real(**kwargs)

    monkeypatch.setattr(_s3(store)._client, "copy_object", counted)
    store.materialize(store.commit("mixed", place.url, by_reference=True))
    assert copies == [f"{place.extra['prefix']}/small.txt"]
    place.remove("big.bin")
    _fill(place, {"large.bin": os.urandom(40_000)})
    monkeypatch.setattr("gitfree.versioning.objects.COPY_MAX", 30_000)
    version = store.commit("mixed", place.url, by_reference=True)
    store.materialize(version)
    assert copies == [f"{place.extra['prefix']}/small.txt"]  # small.txt was in the store; large.bin was streamed
    assert len(_objects_hold_their_md5(store, seaweedfs.client(), seaweedfs.bucket)) == 3
    place.remove("large.bin")
    place.remove("small.txt")
    assert set(read_tree(place.store().pull("mixed@1", tmp_path / "out"))) == {"big.bin", "small.txt"}
    assert set(read_tree(place.store().pull(version, tmp_path / "out2"))) == {"large.bin", "small.txt"}


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
def test_drift_during_materialize_copies_nothing_of_it_and_a_rerun_goes_on(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], versioned: bool
) -> None:
    """A key overwritten (no versioning: the ETag pin refuses) or whose version was deleted (VersionId pin): an
    IntegrityError naming the key; files/md5/ holds only bytes of their md5; once the source holds the committed
    bytes again, a rerun copies (or, its pinned version gone, streams) what is still missing."""
    files = _many(12)
    place = _place(seaweedfs, make_store, versioned=versioned)
    client, bucket = place.extra["client"], place.extra["bucket"]
    _fill(place, files)
    store = place.store()
    version = store.commit("images", place.url, by_reference=True)
    table, _ = store.catalog.references(version)
    drifted = table.entries[5]
    if versioned:
        key = f"{place.extra['prefix']}/{drifted.path}"
        client.delete_object(Bucket=bucket, Key=key, VersionId=drifted.version_id)
        what = f"its version {drifted.version_id} no longer exists, nor does the key"
    else:
        place.write(drifted.path, b"other bytes")
        what = f"ETag was {drifted.etag}, is {hashlib.md5(b'other bytes', usedforsecurity=False).hexdigest()}"
    with pytest.raises(IntegrityError) as caught:
        place.store().materialize("images@1")
    assert str(caught.value).startswith(
        f"{place.url}{drifted.path} changed since it was committed by reference: {what}; nothing was read from it"
    )
    copied = _objects_hold_their_md5(store, seaweedfs.client(), seaweedfs.bucket)
    assert drifted.md5 not in copied
    # The same bytes again: the same ETag (versioned: under a new VersionId, so the pinned copy finds no version
    # and the file is streamed, read by its ETag and hash-checked, as a read of it is).
    place.write(drifted.path, files[drifted.path])
    store.materialize("images@1")
    assert _objects_hold_their_md5(store, seaweedfs.client(), seaweedfs.bucket) == {e.md5 for e in table.entries}


def test_a_source_bucket_deleted_since_the_commit_is_the_drift_error(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store]
) -> None:
    """The copy's NoSuchBucket is the source's (the store's bucket answered just before): "it no longer exists",
    naming the key, not the store's bucket."""
    client, bucket = seaweedfs.client(), f"gone-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="data/a.csv", Body=FILES["a.csv"])
    store = make_store("s3")
    store.commit("gone", f"s3://{bucket}/data/", by_reference=True)
    client.delete_object(Bucket=bucket, Key="data/a.csv")
    client.delete_bucket(Bucket=bucket)
    with pytest.raises(IntegrityError) as caught:
        store.materialize("gone@1")
    assert str(caught.value).startswith(
        f"s3://{bucket}/data/a.csv changed since it was committed by reference: it no longer exists"
    )


def _see_drift(place: Place, path: str) -> None:
    """The server says the key now holds the other bytes (a HEAD), before a test relies on copying them."""
    head = place.extra["client"].head_object(Bucket=place.extra["bucket"], Key=f"{place.extra['prefix']}/{path}")
    assert head["ETag"].strip('"') == hashlib.md5(b"other bytes", usedforsecurity=False).hexdigest()


def _ignore_copy_pins(store: Store, monkeypatch: pytest.MonkeyPatch, *, except_probes: bool) -> None:
    """The fault a real server cannot be made to show: one that ignores CopySourceIfMatch (on every copy, or on
    every copy but the probe's)."""
    real = _s3(store)._client.copy_object

    def ignoring(**kwargs: Any) -> Any:
        if not (except_probes and "/probes/" in kwargs["Key"]):
            kwargs.pop("CopySourceIfMatch", None)
        return real(**kwargs)

    monkeypatch.setattr(_s3(store)._client, "copy_object", ignoring)


def test_a_server_that_ignores_the_copy_pin_is_found_out_and_the_files_are_streamed(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """The probe (a copy with a wrong CopySourceIfMatch, to a probe key) is not refused: nothing is copied, the
    files are streamed, hash-checked; the drifted one is the read's IntegrityError, and no wrong byte reaches
    files/md5/ even for a moment. The probe key is removed."""
    files = _many(6)
    place = _place(seaweedfs, make_store, versioned=False)
    _fill(place, files)
    store = place.store()
    version = store.commit("images", place.url, by_reference=True)
    drifted = store.catalog.references(version)[0].entries[2]
    place.write(drifted.path, b"other bytes")
    _see_drift(place, drifted.path)
    _ignore_copy_pins(store, monkeypatch, except_probes=False)
    with caplog.at_level(logging.WARNING, "gitfree"), pytest.raises(IntegrityError) as caught:
        store.materialize(version)
    assert f"{place.url}{drifted.path} changed since it was committed by reference: ETag was" in str(caught.value)
    assert "although its CopySourceIfMatch was not the key's ETag" in caplog.text
    assert drifted.md5 not in _objects_hold_their_md5(store, seaweedfs.client(), seaweedfs.bucket)
    assert list(store.backend.list(layout.PROBES)) == []


def test_a_copy_whose_etag_is_not_the_md5_is_removed_and_refused(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that honours the probe's pin but not the others' copies drifted bytes: the copy's ETag is not the
    md5, so one read of the copy is hashed, and the copy is removed: IntegrityError, files/md5/X never stays
    holding bytes that are not X; the files that did not drift are copied."""
    files = _many(6)
    place = _place(seaweedfs, make_store, versioned=False)
    _fill(place, files)
    store = place.store()
    version = store.commit("images", place.url, by_reference=True)
    drifted = store.catalog.references(version)[0].entries[2]
    place.write(drifted.path, b"other bytes")
    _see_drift(place, drifted.path)
    _ignore_copy_pins(store, monkeypatch, except_probes=True)
    with pytest.raises(IntegrityError) as caught:
        store.materialize(version)
    assert str(caught.value).startswith(f"the copy of {place.url}{drifted.path} into {store.url}/files/md5/")
    assert "it was removed" in str(caught.value)
    copied = _objects_hold_their_md5(store, seaweedfs.client(), seaweedfs.bucket)
    assert drifted.md5 not in copied and len(copied) == len(files) - 1


def test_a_materialize_killed_mid_copy_leaves_a_store_fsck_deep_calls_clean(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path
) -> None:
    """kill -9 after the 5th of 30 copies: every object in files/md5/ holds its md5, fsck --deep finds no
    problem, and the next materialize copies the rest."""
    files = _many(30)
    place = _place(seaweedfs, make_store, versioned=True)
    _fill(place, files)
    store = place.store()
    store.commit("images", place.url, by_reference=True)
    proc = SPAWN.Process(
        target=materialize_and_crash, args=(s3_url, seaweedfs.store_options(), str(tmp_path / "crash"), "images@1", 5)
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL, f"the kill was not reached (exit {proc.exitcode})"
    copied = _objects_hold_their_md5(store, seaweedfs.client(), seaweedfs.bucket)
    assert 5 <= len(copied) < 30
    assert store.fsck(deep=True).problems == []
    store.materialize("images@1")
    assert len(_objects_hold_their_md5(store, seaweedfs.client(), seaweedfs.bucket)) == 30
    assert store.fsck(deep=True).problems == []
    for path in files:
        place.remove(path)
    assert read_tree(make_store("s3").pull("images@1", tmp_path / "out")) == files


# ---------------------------------------------------------------------------------------------- source options


def _other_place(other: OtherSeaweedFS) -> tuple[str, SourceOptions]:
    """FILES under a fresh prefix of the second server; its URL and the options that reach it."""
    client, prefix = other.client(), f"data-{uuid.uuid4().hex[:8]}"
    for path, data in FILES.items():
        client.put_object(Bucket=other.bucket, Key=f"{prefix}/{path}", Body=data)
    options = SourceOptions(
        endpoint_url=other.endpoint, access_key_id=other.access_key, secret_access_key=other.secret_key
    )
    return f"s3://{other.bucket}/{prefix}/", options


def test_a_source_on_another_endpoint_is_read_with_the_options_for_that_endpoint(
    other: OtherSeaweedFS,
    seaweedfs: SeaweedFS,
    make_store: Callable[..., Store],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table names the source's endpoint, never a credential; a reader without options for that endpoint
    gets one line saying what to set; with them (GITFREE_SOURCE_*, or Store(source_options=) keyed by the
    endpoint) it reads the files; materialize streams them (another service: no copy)."""
    url, options = _other_place(other)
    store = make_store("s3")
    version = store.commit("images", url, by_reference=True, source_options=options)
    assert (version.ref, version.nfiles, version.created) == ("images@1", 4, True)
    table, _ = store.catalog.references(version)
    assert table.endpoint == other.endpoint
    again = store.commit("images", url, by_reference=True, source_options=options)
    assert (again.ref, again.created) == ("images@1", False)
    client = seaweedfs.client()
    prefix = store.url.split("/", 3)[3]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=seaweedfs.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=seaweedfs.bucket, Key=obj["Key"])["Body"].read()
            assert other.secret_key.encode() not in body, obj["Key"]
    assert other.secret_key not in repr(options) and other.secret_key not in str(options)

    bare = make_store("s3")  # another worker, with no options for that endpoint
    assert [e.path for e in bare.files("images@1")] == sorted(FILES)  # the catalog needs none
    with pytest.raises(ConfigError) as caught:
        bare.pull("images@1", tmp_path / "bare")
    assert str(caught.value) == (
        f"the files of {url} are on {other.endpoint}, and no source options are set for it: set "
        f"GITFREE_SOURCE_ENDPOINT_URL={other.endpoint} and GITFREE_SOURCE_ACCESS_KEY_ID / "
        "GITFREE_SOURCE_SECRET_ACCESS_KEY (or GITFREE_SOURCE_PROFILE), or pass Store(source_options=...)"
    )
    assert not (tmp_path / "bare").exists()

    keyed = make_store(
        "s3",
        source_options={
            f"{other.endpoint}/": SourceOptions(access_key_id=other.access_key, secret_access_key=other.secret_key)
        },
    )
    assert keyed.open("images", "d/b.txt").read() == FILES["d/b.txt"]
    for name, value in (
        ("GITFREE_SOURCE_ENDPOINT_URL", other.endpoint),
        ("GITFREE_SOURCE_ACCESS_KEY_ID", other.access_key),
        ("GITFREE_SOURCE_SECRET_ACCESS_KEY", other.secret_key),
    ):
        monkeypatch.setenv(name, value)
    reader = make_store("s3")
    assert read_tree(reader.pull("images@1", tmp_path / "env")) == FILES
    reader.materialize("images@1")  # streamed: the source is on another service
    for path in FILES:
        other.client().delete_object(Bucket=other.bucket, Key=f"{url.split('/', 3)[3]}{path}")
    monkeypatch.delenv("GITFREE_SOURCE_SECRET_ACCESS_KEY")
    monkeypatch.delenv("GITFREE_SOURCE_ACCESS_KEY_ID")
    monkeypatch.delenv("GITFREE_SOURCE_ENDPOINT_URL")
    assert read_tree(make_store("s3").pull("images@1", tmp_path / "after")) == FILES  # from the store alone


def test_source_options_bad_input_is_one_clear_line_and_nothing_is_written(
    other: OtherSeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """Options without by_reference, options for a folder, an endpoint that refuses connections, credentials
    that can list but not read: one error each, naming what to do and no secret; no version is made."""
    url, options = _other_place(other)
    store = make_store("s3")
    with pytest.raises(InputError, match=r"^source options .* are for a commit by reference: add --by-reference"):
        store.commit("images", tmp_path, source_options=options)
    with pytest.raises(InputError, match=r"^source options .* are for an s3:// source, not 'file:///"):
        store.commit("images", f"file://{tmp_path}", by_reference=True, source_options=options)
    refused = SourceOptions(endpoint_url=f"http://127.0.0.1:{free_port()}", access_key_id="k", secret_access_key="s")
    with pytest.raises(ConfigError) as caught:
        store.commit("images", url, by_reference=True, source_options=refused)
    assert str(caught.value).startswith(f"cannot list the source {url}: cannot reach the S3 endpoint http://127.0.0.1:")
    assert "(GITFREE_SOURCE_ENDPOINT_URL; GITFREE_CONNECT_TIMEOUT is 3 s)" in str(caught.value)
    lister = SourceOptions(endpoint_url=other.endpoint, access_key_id=LISTER[0], secret_access_key=LISTER[1])
    with pytest.raises(ConfigError) as caught:
        store.commit("images", url, by_reference=True, source_options=lister)
    message = str(caught.value)
    assert message.startswith(f"cannot read the source {url}: {other.endpoint} denied access to {url}"), message
    assert "GITFREE_SOURCE_ACCESS_KEY_ID" in message and LISTER[1] not in message
    assert store.datasets() == []
    assert list(store.backend.list(layout.REFERENCES)) == []


def test_the_cli_takes_source_options_from_flags_and_gitfree_source_variables(
    other: OtherSeaweedFS,
    seaweedfs: SeaweedFS,
    s3_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = _other_place(other)
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITFREE_STORE", s3_url)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cli-cache"))
    runner = CliRunner()
    wrong = runner.invoke(cli, ["commit", "images", str(tmp_path), "--source-endpoint-url", other.endpoint])
    assert (wrong.exit_code, wrong.output.strip().splitlines()) == (
        InputError.exit_code,
        [
            "error: --source-endpoint-url, --source-region and --source-profile are for a commit by reference: add "
            "--by-reference, or leave them out"
        ],
    )
    monkeypatch.setenv("GITFREE_SOURCE_ACCESS_KEY_ID", other.access_key)
    monkeypatch.setenv("GITFREE_SOURCE_SECRET_ACCESS_KEY", other.secret_key)
    # GITFREE_SOURCE_* set (as a reader needs them) do not stand in the way of a commit that uploads.
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "x.txt").write_bytes(b"x")
    assert runner.invoke(cli, ["commit", "uploaded", str(tmp_path / "up")]).exit_code == 0
    done = runner.invoke(cli, ["commit", "images", url, "--by-reference", "--source-endpoint-url", other.endpoint])
    assert (done.exit_code, done.output) == (0, f"committed images@1 by reference to {url}: 4 files, 10.0 KiB\n")
    monkeypatch.delenv("GITFREE_SOURCE_ACCESS_KEY_ID")
    monkeypatch.delenv("GITFREE_SOURCE_SECRET_ACCESS_KEY")
    failed = runner.invoke(cli, ["pull", "images@1", str(tmp_path / "out")])
    assert failed.exit_code == ConfigError.exit_code
    assert failed.output.strip().splitlines() == [
        f"error: the files of {url} are on {other.endpoint}, and no source options are set for it: set "
        f"GITFREE_SOURCE_ENDPOINT_URL={other.endpoint} and GITFREE_SOURCE_ACCESS_KEY_ID / "
        "GITFREE_SOURCE_SECRET_ACCESS_KEY (or GITFREE_SOURCE_PROFILE), or pass Store(source_options=...)"
    ]
    for name, value in (
        ("GITFREE_SOURCE_ENDPOINT_URL", other.endpoint),
        ("GITFREE_SOURCE_ACCESS_KEY_ID", other.access_key),
        ("GITFREE_SOURCE_SECRET_ACCESS_KEY", other.secret_key),
    ):
        monkeypatch.setenv(name, value)
    pulled = runner.invoke(cli, ["pull", "images@1", str(tmp_path / "out")])
    assert (pulled.exit_code, read_tree(tmp_path / "out")) == (0, FILES), pulled.output
    assert other.secret_key not in done.output + failed.output + pulled.output


def test_the_same_bucket_on_another_endpoint_is_another_source(
    other: OtherSeaweedFS, seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path
) -> None:
    """The same s3://bucket/prefix/ on two servers: the head's entries (VersionIds of the first) are not kept for
    the second, whose files are looked at afresh; and a source on another endpoint never overlaps the store
    (the store's own bucket and prefix there can be referenced), while on the store's endpoint it does."""
    place = _place(seaweedfs, make_store, versioned=True)
    bucket, prefix, url = place.extra["bucket"], place.extra["prefix"], place.url
    here, there = seaweedfs.client(), other.client()
    with contextlib.suppress(there.exceptions.BucketAlreadyOwnedByYou, there.exceptions.BucketAlreadyExists):
        there.create_bucket(Bucket=bucket)
    for path, data in FILES.items():
        for client in (here, there):
            client.put_object(Bucket=bucket, Key=f"{prefix}/{path}", Body=data)
    _, options = _other_place(other)
    store = make_store("s3", source_options=options)
    first = store.commit("images", url, by_reference=True, source_options=SourceOptions(**seaweedfs_options(seaweedfs)))
    second = store.commit("images", url, by_reference=True)  # the store's options: the other server
    assert (first.number, second.number) == (1, 2)
    tables = [store.catalog.references(v)[0] for v in (first, second)]
    assert all(e.version_id for e in tables[0].entries) and not any(e.version_id for e in tables[1].entries)
    assert read_tree(store.pull("images@2", tmp_path / "two")) == FILES
    # The store's own endpoint, recorded: a worker without options for it reads with the store's settings.
    assert read_tree(make_store("s3").pull("images@1", tmp_path / "one")) == FILES

    store_bucket, store_prefix = s3_url[len("s3://") :].split("/", 1)
    there.create_bucket(Bucket=store_bucket)
    there.put_object(Bucket=store_bucket, Key=f"{store_prefix}/data/a.csv", Body=FILES["a.csv"])
    inside = f"{s3_url}/data/"
    assert store.commit("elsewhere", inside, by_reference=True).nfiles == 1
    with pytest.raises(InputError, match=r"overlaps the store"):
        store.commit("inside", inside, by_reference=True, source_options=SourceOptions(**seaweedfs_options(seaweedfs)))


def seaweedfs_options(server: SeaweedFS) -> dict[str, Any]:
    """Source options that reach ``server`` (the store's own endpoint, given as options)."""
    return {"endpoint_url": server.endpoint, "access_key_id": server.access_key, "secret_access_key": server.secret_key}


def test_concurrent_materializes_of_hostile_names_copy_each_file_whole(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """Keys with spaces, '+', '%', '#', '?', '&', '=' and non-ASCII letters are copied as they are (boto3 encodes
    the copy source); two workers materialising the same version at once both succeed (a copy of the same bytes
    to the same key is the same object), and the store then holds every file whole."""
    names = ["a b.txt", "plus+sign.txt", "per%25cent.txt", "hash#tag.txt", "what?.txt", "k&v=1.txt", "ünï/cødé.txt"]
    files = {name: f"bytes of {name}".encode() * 50 for name in names}
    place = _place(seaweedfs, make_store, versioned=False)
    _fill(place, files)
    version = place.store().commit("odd", place.url, by_reference=True)
    assert sorted(e.path for e in place.store().files(version)) == sorted(names)
    workers = [place.store() for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda store: store.materialize("odd@1"), workers))
    assert len(_objects_hold_their_md5(workers[0], seaweedfs.client(), seaweedfs.bucket)) == len(names)
    assert [_cached_files(store) for store in workers] == [[], []]  # copied on the server, none streamed
    for name in names:
        place.remove(name)
    assert read_tree(place.store().pull("odd@1", tmp_path / "out")) == files


def test_a_copy_needs_the_same_credentials_not_only_the_same_endpoint(other: OtherSeaweedFS, tmp_path: Path) -> None:
    """A store on the second server, a source there read with other credentials (a reader's): the same endpoint,
    but a copy signed by the store could read what the reader cannot, so the files are streamed; with the store's
    own credentials as the source options they are copied."""
    url, admin = _other_place(other)
    reader = SourceOptions(endpoint_url=other.endpoint, access_key_id=READER[0], secret_access_key=READER[1])
    for n, (options, copied) in enumerate(((reader, False), (admin, True))):
        store = Store(
            f"s3://{other.bucket}/store-{uuid.uuid4().hex[:8]}",
            cache_dir=tmp_path / f"cache-{n}",
            **{**other.store_options(), "source_options": options},
        )
        store.materialize(store.commit("images", url, by_reference=True))
        assert (_cached_files(store) == []) is copied
        assert len(_objects_hold_their_md5(store, other.client(), other.bucket)) == len(FILES)
