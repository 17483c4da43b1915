"""fsck and GC of versions by reference (docs/design.md, "Versions by reference", "fsck", "Garbage collection"):
drift found per version with one HEAD (or stat) per source object and nothing written, ``--deep`` re-hashing,
reference tables collected by the grace and lease rules, and the bound on the tables a process keeps. On a real
SeaweedFS bucket (versioning on and off) and a local folder."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _workers import commit_by_reference_and_crash, commit_by_reference_paused
from click.testing import CliRunner
from helpers import Place as Source
from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.cli import cli
from gitfree.testing import CountingProxy, SeaweedFS
from gitfree.versioning import layout
from gitfree.versioning.models import FileEntry, Reference, References
from gitfree.versioning.objects import REFERENCES_KEPT
from gitfree.versioning.sources import FileSource
from gitfree.versioning.sources import Source as BaseSource

SPAWN = multiprocessing.get_context("spawn")
FILES = {"a.csv": b"x,y\n1,2\n", "d/b.txt": b"hello b", "z.json": b"{}"}


_VERSIONED: dict[int, str] = {}
"""The one versioned bucket of each SeaweedFS (by port): `weed mini` has volumes for about 30 buckets holding data,
so the sources here are prefixes, in that bucket or (without versioning) in the session's own bucket."""


def _s3(seaweedfs: SeaweedFS, make_store: Callable[..., Store], *, versioned: bool) -> Source:
    client = seaweedfs.client()
    bucket = seaweedfs.bucket
    if versioned:
        if seaweedfs.s3_port not in _VERSIONED:
            name = f"chk-{uuid.uuid4().hex[:12]}"
            client.create_bucket(Bucket=name)
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            _VERSIONED[seaweedfs.s3_port] = name
        bucket = _VERSIONED[seaweedfs.s3_port]
    prefix = f"src-{uuid.uuid4().hex[:12]}/"
    return Source(
        "s3-versioned" if versioned else "s3",
        f"s3://{bucket}/{prefix}",
        lambda path, data: client.put_object(Bucket=bucket, Key=f"{prefix}{path}", Body=data),
        lambda path: client.delete_object(Bucket=bucket, Key=f"{prefix}{path}"),
        lambda **kw: make_store("s3", **kw),
        {"client": client, "bucket": bucket, "prefix": prefix},
    )


def _folder(root: Path, make_store: Callable[..., Store]) -> Source:
    root.mkdir(parents=True)
    return Source(
        "file",
        f"file://{root}/",
        lambda path, data: write_tree(root, {path: data}),
        lambda path: (root / path).unlink(),
        lambda **kw: make_store("file", **kw),
        {"root": root},
    )


@pytest.fixture(params=["s3-versioned", "s3", "file"])
def source(
    request: pytest.FixtureRequest, seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> Source:
    if request.param == "file":
        return _folder(tmp_path / "shared" / "data", make_store)
    return _s3(seaweedfs, make_store, versioned=request.param == "s3-versioned")


def _fill(source: Source, files: dict[str, bytes] = FILES) -> None:
    source.fill(files)


def _store_state(store: Store) -> dict[str, tuple[int, str | None]]:
    """Every key of the store with its size and ETag: what a check must leave as it found it."""
    return {info.key: (info.size, info.etag) for info in store.backend.scan("")}


def _found(report: Any) -> list[tuple[str | None, str, str, str]]:
    return [(p.ref, p.kind, p.key.rsplit("/", 1)[-1], p.detail) for p in report.problems]


def _etag(source: Source, path: str) -> str:
    head = source.extra["client"].head_object(Bucket=source.extra["bucket"], Key=f"{source.extra['prefix']}{path}")
    return str(head["ETag"]).strip('"')


# ---------------------------------------------------------------------------- fsck: drift


def test_fsck_reports_each_drifted_source_object_per_version_and_writes_nothing(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """images@1 and images@2 share a.csv and z.json; d/b.txt changed between them. Then a.csv is rewritten (same
    size) and z.json deleted. A bucket without versioning and a folder keep no old bytes: both versions drift on
    both keys, and images@1 on d/b.txt too. A versioned bucket still holds every pinned version: nothing drifts
    until the VersionId a.csv was committed at is deleted, and then both versions say so."""
    _fill(source)
    store = source.store()
    first = store.commit("images", source.url, by_reference=True)
    old = {p: _etag(source, p) for p in FILES} if source.kind.startswith("s3") else {}
    source.write("d/b.txt", b"hello b, longer")
    store.commit("images", source.url, by_reference=True)
    source.write("a.csv", b"x,y\n1,3\n")
    source.remove("z.json")
    if source.kind == "s3-versioned":
        assert store.fsck().problems == []
        table, _ = store.catalog.references(first)
        pinned = next(e for e in table.entries if e.path == "a.csv").version_id
        assert pinned is not None
        key = f"{source.extra['prefix']}a.csv"
        source.extra["client"].delete_object(Bucket=source.extra["bucket"], Key=key, VersionId=pinned)
    before = _store_state(store)
    report = place_fsck = source.store().fsck()
    assert _store_state(store) == before  # fsck writes nothing
    if source.kind == "s3-versioned":
        gone = f"its version {pinned} no longer exists"
        assert _found(place_fsck) == [("images@1", "drift", "a.csv", gone), ("images@2", "drift", "a.csv", gone)]
    elif source.kind == "s3":
        now = {p: _etag(source, p) for p in ("a.csv", "d/b.txt")}
        a_csv = f"ETag was {old['a.csv']}, is {now['a.csv']}"
        assert _found(report) == [
            ("images@1", "drift", "a.csv", a_csv),
            ("images@1", "drift", "b.txt", f"size was 7, is 15; ETag was {old['d/b.txt']}, is {now['d/b.txt']}"),
            ("images@1", "drift", "z.json", "it no longer exists"),
            ("images@2", "drift", "a.csv", a_csv),
            ("images@2", "drift", "z.json", "it no longer exists"),
        ]
    else:
        found = _found(report)
        assert [f[:3] for f in found] == [
            ("images@1", "drift", "a.csv"),
            ("images@1", "drift", "b.txt"),
            ("images@1", "drift", "z.json"),
            ("images@2", "drift", "a.csv"),
            ("images@2", "drift", "z.json"),
        ]
        assert re.fullmatch(r"modified: mtime was 20\d\d-\S+ \S+ UTC, is 20\d\d-\S+ \S+ UTC", found[0][3]), found
        assert found[1][3].startswith("size was 7, is 15; modified: mtime was ")
        assert found[2][3] == "it no longer exists"
    assert report.sources == {"s3-versioned": 4, "s3": 3, "file": 3}[source.kind]  # one look per source object
    assert report.broken_versions == ["images@1", "images@2"] and not report.ok


def test_the_cli_says_which_version_which_key_and_what_differs_and_exits_5(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _s3(seaweedfs, make_store, versioned=False)
    _fill(source)
    source.store().commit("images", source.url, by_reference=True)
    was = _etag(source, "a.csv")
    source.write("a.csv", b"x,y\n1,3\n")
    source.remove("z.json")
    for key, value in {**seaweedfs.env(), "GITFREE_STORE": s3_url, "GITFREE_CACHE_DIR": str(tmp_path / "c")}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["fsck"])
    assert result.exit_code == 5, result.output
    assert result.output.splitlines() == [
        "images@1:",
        f"  drift: {source.url}a.csv (ETag was {was}, is {_etag(source, 'a.csv')})",
        f"  drift: {source.url}z.json (it no longer exists)",
        "checked 1 version of 1 dataset, 0 tags, 0 objects, 3 source objects",
        "a drifted source cannot be repaired here: restore it, or commit the source again",
        "(materialize a version while its source still holds it)",
        "1 broken version",
    ]
    repaired = CliRunner().invoke(cli, ["fsck", "--repair"])
    assert repaired.exit_code == 5 and "  drift: " in repaired.output  # the bytes are not the store's to repair


def test_drift_of_what_the_store_holds_is_a_note(source: Source) -> None:
    """A materialised version reads from files/md5/: its source drifting breaks nothing, and fsck says so as a note.
    A file the store lacks again (deleted from files/md5/) makes that drift a problem once more."""
    _fill(source)
    store = source.store()
    version = store.commit("images", source.url, by_reference=True)
    store.materialize(version)
    source.write("a.csv", b"x,y\n9,9\n")
    if source.kind == "s3-versioned":
        table, _ = store.catalog.references(version)
        for entry in table.entries:  # every version of the key goes, the pinned one too
            source.extra["client"].delete_object(
                Bucket=source.extra["bucket"], Key=f"{source.extra['prefix']}{entry.path}", VersionId=entry.version_id
            )
    else:
        source.remove("z.json")
    report = source.store().fsck()
    assert report.ok and report.problems == []
    assert {n.ref for n in report.notes} == {"images@1"} and all(n.kind == "drift" for n in report.notes)
    assert all("is read instead: materialised" in n.detail for n in report.notes)
    assert report.objects == 3  # the three materialised files, checked as any object is
    a_csv = hashlib.md5(FILES["a.csv"], usedforsecurity=False).hexdigest()
    store.backend.delete(layout.object_key(a_csv))
    again = source.store().fsck()
    assert [(p.kind, p.key.rsplit("/", 1)[-1]) for p in again.problems] == [("drift", "a.csv")]


# ---------------------------------------------------------------------------- fsck: what it costs, and --deep


def test_the_quick_check_is_one_head_per_source_object_and_reads_none(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path
) -> None:
    """Counted on the wire: two versions of 200 objects of 16 KiB sharing 199 of them cost 201 HEADs (one per
    source object, the VersionIds of both versions of the changed one) and no object read (12 GETs: the store's
    records, listings and tables); --deep reads each once instead."""
    n, size = 200, 16384
    source = _s3(seaweedfs, make_store, versioned=True)
    _fill(source, {f"{i:03d}.bin": os.urandom(size) for i in range(n)})
    source.store().commit("many", source.url, by_reference=True)
    source.write("000.bin", os.urandom(size))
    source.store().commit("many", source.url, by_reference=True)
    with CountingProxy(seaweedfs.s3_port) as proxy:
        store = Store(s3_url, cache_dir=tmp_path / "w", **{**seaweedfs.store_options(), "endpoint_url": proxy.endpoint})
        proxy.take()
        report = store.fsck()
        quick = proxy.take()
        deep = store.fsck(deep=True)
        read = proxy.take()
    assert report.ok and report.sources == n + 1 and report.bytes_hashed == 0
    assert quick.requests["HEAD"] == n + 1, quick.as_dict()
    assert quick.requests["GET"] < 20 and quick.bytes_down < n * size / 8, quick.as_dict()  # no object read
    assert deep.ok and deep.bytes_hashed >= (n + 1) * size
    assert read.requests["GET"] >= n + 1 and read.bytes_down >= (n + 1) * size, read.as_dict()
    print(f"\nfsck of 2 versions by reference ({n} + 1 source objects): {quick.as_dict()}; --deep: {read.as_dict()}")


def test_deep_rehashes_what_a_stat_or_an_etag_cannot_tell(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """A local file rewritten with the same size and its mtime set back passes every stat; a table whose ETag is
    the object's but whose md5 is not its bytes' (forged, or a server lying about ETags) passes every HEAD. Only
    --deep, reading each pinned and hashing it, tells; and it keeps nothing of what it read."""
    folder = _folder(tmp_path / "shared" / "data", make_store)
    _fill(folder)
    folder.store().commit("images", folder.url, by_reference=True)
    path = folder.extra["root"] / "d" / "b.txt"
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"HELLO B")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    store = folder.store()
    assert store.fsck().ok
    deep = store.fsck(deep=True)
    expected = hashlib.md5(b"HELLO B", usedforsecurity=False).hexdigest()
    assert _found(deep) == [
        (
            "images@1",
            "drift",
            "b.txt",
            f"md5 of its bytes is {expected} (7 bytes), was "
            f"{hashlib.md5(b'hello b', usedforsecurity=False).hexdigest()} (7 bytes)",
        )
    ]
    assert not [p for p in (store.cache_dir / "files").rglob("*") if p.is_file() and p.suffix != ".dir"]

    s3 = _s3(seaweedfs, make_store, versioned=True)
    _fill(s3)
    store = s3.store()
    real = store.commit("images", s3.url, by_reference=True)
    _forge_md5(store, real, "a.csv", b"not these bytes")
    report = s3.store().fsck()
    assert report.ok, report.problems
    deep = s3.store().fsck(deep=True)
    assert [(p.ref, p.kind, p.key.rsplit("/", 1)[-1]) for p in deep.problems] == [("images@2", "drift", "a.csv")]
    assert deep.problems[0].detail.startswith("md5 of its bytes is ")


def _forge_md5(store: Store, version: Any, path: str, claimed: bytes) -> None:
    """Commit ``images@2``: ``version`` with the entry ``path`` claiming the md5 of ``claimed`` (its ETag, size and
    VersionId still the object's), its listing uploaded, as a forged or buggy table would make it."""
    table, _ = store.catalog.references(version)
    md5 = hashlib.md5(claimed, usedforsecurity=False).hexdigest()
    _forge(store, version, [e.model_copy(update={"md5": md5}) if e.path == path else e for e in table.entries])


def _forge(store: Store, version: Any, entries: list[Any], *, listing_too: bool = True) -> None:
    """Commit ``images@2``: ``version`` with a forged table of ``entries`` (and its listing, unless not)."""
    table, _ = store.catalog.references(version)
    forged = References(source=table.source, kind=table.kind, entries=entries)
    data, listing = forged.data(), forged.listing()
    table_md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    oid = layout.listing_oid(hashlib.md5(listing, usedforsecurity=False).hexdigest())
    store.backend.put(layout.reference_key(table_md5), data)
    if listing_too:
        store.backend.put(layout.object_key(oid), listing)
    out = version.pointer.outs[0].model_copy(update={"md5": oid})
    record = version.model_copy(
        update={
            "number": 2,
            "parent": 1,
            "id": uuid.uuid4(),
            "pointer": version.pointer.model_copy(update={"outs": [out]}),
            "reference": Reference(table=table_md5, source=table.source),
        }
    )
    store.catalog.create(layout.version_key("images", 2), record)


def test_a_table_naming_a_path_outside_its_source_is_refused_without_looking(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """A forged table whose entry climbs out of its folder (``../secret.txt``), its listing not uploaded (a listing
    in the store is judged by the readers' path rules already): fsck says the listing is missing and the table is
    bad, and never looks at the file outside."""
    folder = _folder(tmp_path / "shared" / "data", make_store)
    _fill(folder)
    (tmp_path / "shared" / "secret.txt").write_bytes(b"not yours")
    store = folder.store()
    version = store.commit("images", folder.url, by_reference=True)
    table, _ = store.catalog.references(version)
    outside = table.entries[0].model_copy(update={"path": "../secret.txt"})
    _forge(store, version, sorted([outside, *table.entries[1:]], key=lambda e: e.path), listing_too=False)
    report = folder.store().fsck()
    assert [(p.ref, p.kind) for p in report.problems] == [("images@2", "bad_table"), ("images@2", "missing_listing")]
    assert "'../secret.txt'" in report.problems[0].detail and report.sources == 3


def test_a_kind_of_source_without_a_look_of_its_own_is_checked_by_a_pinned_read_of_one_byte(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """``Source.drift`` by default (a kind of source that does not override it) reads one byte of each entry pinned
    as a read is: here through a folder, whose own look is a stat."""
    folder = _folder(tmp_path / "shared" / "data", make_store)
    _fill(folder)
    store = folder.store()
    table, _ = store.catalog.references(store.commit("images", folder.url, by_reference=True))
    source = FileSource(folder.extra["root"])
    assert [BaseSource.drift(source, [e]) for e in table.entries] == [[None], [None], [None]]
    folder.write("a.csv", b"x,y\n1,3\n")
    folder.remove("z.json")
    found = [BaseSource.drift(source, [e])[0] for e in table.entries]
    assert found[0] is not None and found[0].startswith("modified") and found[1:] == [None, "it no longer exists"]


# ---------------------------------------------------------------------------- fsck: a source that cannot be looked at


def test_a_source_that_cannot_be_looked_at_is_one_line_per_version_and_the_rest_is_still_checked(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file store whose versions reference an S3 bucket (on the store's endpoint settings) and two folders. Seen
    by a worker whose S3 secret is wrong (credentials gone), with one folder removed (unmounted) and the other
    drifted: each version of the bucket and of the removed folder is one line saying why, the drift is still
    reported, the bucket costs one HEAD, nothing is written, and the CLI prints no traceback (exit 5)."""
    s3 = _s3(seaweedfs, make_store, versioned=True)
    _fill(s3)
    kept, gone = _folder(tmp_path / "kept", make_store), _folder(tmp_path / "gone", make_store)
    _fill(kept)
    _fill(gone)
    url, options = tmp_path / "store", seaweedfs.store_options()
    store = Store(url, cache_dir=tmp_path / "c1", **options)
    store.commit("bucket", s3.url, by_reference=True)
    s3.write("extra.txt", b"more")
    store.commit("bucket", s3.url, by_reference=True)
    store.commit("kept", kept.url, by_reference=True)
    store.commit("gone", gone.url, by_reference=True)
    kept.remove("z.json")
    shutil.rmtree(tmp_path / "gone")
    before = _store_state(store)
    with CountingProxy(seaweedfs.s3_port) as proxy:
        wrong = {**options, "endpoint_url": proxy.endpoint, "secret_access_key": "not-the-secret"}
        report = Store(url, cache_dir=tmp_path / "c2", **wrong).fsck()
        sent = proxy.take()
    assert _store_state(store) == before
    assert [(p.ref, p.kind) for p in report.problems] == [
        ("bucket@1", "source_unreadable"),
        ("bucket@2", "source_unreadable"),
        ("gone@1", "source_unreadable"),
        ("kept@1", "drift"),
    ]
    bucket, folder = report.problems[0].detail, report.problems[2].detail
    assert (
        bucket.startswith("cannot look at its source: ")
        and "denied access" in bucket
        and "check the credentials" in bucket
    )
    unmounted = "it is no longer a folder (unmounted, moved or removed?)"
    assert folder == f"cannot look at its source: cannot read the source {gone.url}: {unmounted}"
    assert "not-the-secret" not in str(report)
    assert sent.requests == {"HEAD": 1}, sent.as_dict()  # the bucket was probed once, not once per object
    for key, value in {**seaweedfs.env(), "GITFREE_SECRET_ACCESS_KEY": "not-the-secret"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITFREE_STORE", str(url))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "c3"))
    result = CliRunner().invoke(cli, ["fsck"])
    assert result.exit_code == 5 and "Traceback" not in result.output, result.output
    assert sum("source unreadable: " in line for line in result.output.splitlines()) == 3, result.output


# ---------------------------------------------------------------------------- GC of reference tables


def _tables(store: Store) -> set[str]:
    return set(store.backend.list(layout.REFERENCES))


@pytest.mark.parametrize("kind", ["s3-versioned", "file"])
def test_gc_removes_the_tables_no_kept_version_names_once_past_the_grace(
    kind: str, seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    source = _folder(tmp_path / "d", make_store) if kind == "file" else _s3(seaweedfs, make_store, versioned=True)
    _fill(source)
    store = source.store()
    first = store.commit("images", source.url, by_reference=True)
    source.write("d/b.txt", b"changed")
    second = store.commit("images", source.url, by_reference=True)
    assert first.reference is not None and second.reference is not None
    t1, t2 = layout.reference_key(first.reference.table), layout.reference_key(second.reference.table)
    young = store.gc(keep_last=1)
    assert (young.versions_deleted, young.tables_deleted, young.tables_too_young) == (["images@1"], [], 1)
    assert store.gc(dry_run=True, grace=timedelta(0)).tables_deleted == [t1]
    assert _tables(store) == {t1, t2}  # a dry run deletes nothing
    report = store.gc(grace=timedelta(0))
    assert report.tables_deleted == [t1] and _tables(store) == {t2}
    assert read_tree(source.store().pull("images", tmp_path / "out")) == {**FILES, "d/b.txt": b"changed"}
    assert store.fsck().ok and store.gc(grace=timedelta(0)).tables_deleted == []


def test_gc_removes_the_table_of_a_commit_killed_before_its_record_after_the_grace(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path
) -> None:
    """R5: kill -9 just after the table was created leaves it named by no record, under a dead lease: GC leaves it
    while it is younger than the grace period, then removes it; the next commit writes it again."""
    source = _s3(seaweedfs, make_store, versioned=True)
    _fill(source)
    proc = SPAWN.Process(
        target=commit_by_reference_and_crash,
        args=(s3_url, seaweedfs.store_options(), str(tmp_path / "crash"), source.url, "table"),
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL
    store = source.store()
    (orphan,) = _tables(store)
    young = store.gc()
    assert (young.tables_deleted, young.tables_too_young, young.leases_live) == ([], 1, 0)
    assert store.gc(grace=timedelta(0)).tables_deleted == [orphan] and _tables(store) == set()
    version = store.commit("images", source.url, by_reference=True)
    assert version.number == 1 and _tables(store) == {orphan}  # the same table, written again
    assert read_tree(source.store().pull("images", tmp_path / "out")) == FILES


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_gc_never_removes_the_table_of_a_commit_between_its_table_and_its_record(
    kind: str, seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path
) -> None:
    """Two processes: a commit by reference holds still after creating its table, before its record, under its
    live lease; a GC with no grace at all runs meanwhile and keeps the table (its listing is what the lease names).
    The commit then lands and reads back. On S3 (a versioned bucket) and on a file store (a folder)."""
    if kind == "s3":
        source, url, options = _s3(seaweedfs, make_store, versioned=True), s3_url, seaweedfs.store_options()
    else:
        source, url, options = _folder(tmp_path / "d", make_store), str(tmp_path / "file-store"), {}
    _fill(source)
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = SPAWN.Process(
        target=commit_by_reference_paused, args=(url, options, str(tmp_path / "w"), source.url, str(ready), str(go))
    )
    proc.start()
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), f"the commit did not reach its record (exit {proc.exitcode})"
        store = source.store()
        (table,) = _tables(store)
        report = store.gc(grace=timedelta(0))
        assert (report.leases_live, report.tables_deleted) == (1, [])
        assert _tables(store) == {table}
    finally:
        go.touch()
        proc.join(120)
    assert proc.exitcode == 0
    version = source.store().show("images")
    assert version.reference is not None and layout.reference_key(version.reference.table) == table
    assert read_tree(source.store().pull("images", tmp_path / "out")) == FILES
    assert store.fsck().ok


def test_gc_keeps_the_table_an_unreadable_record_names(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """I5: a record that cannot be read (cut short here) may be a version by reference; the md5s in its bytes are
    roots, its table among them; and one that names nothing keeps every table."""
    source = _folder(tmp_path / "d", make_store)
    _fill(source)
    store = source.store()
    first = store.commit("images", source.url, by_reference=True)
    source.write("d/b.txt", b"changed")
    store.commit("images", source.url, by_reference=True)
    assert first.reference is not None
    key = layout.version_key("images", 1)
    raw, _ = store.backend.get(key)
    store.backend.put(key, raw[:-3])
    report = store.gc(keep_last=1, grace=timedelta(0))
    assert report.unreadable_records == [key] and report.tables_deleted == []
    assert layout.reference_key(first.reference.table) in _tables(store)
    # A record that names nothing at all (empty) stops every deletion, of tables too (images@1 is dropped).
    store.backend.put(key, raw)
    store.backend.put(layout.version_key("other", 1), b"")
    skipped = store.gc(keep_last=1, grace=timedelta(0))
    assert skipped.versions_deleted == ["images@1"] and skipped.sweep_skipped and skipped.tables_deleted == []
    assert layout.reference_key(first.reference.table) in _tables(store)


def test_gc_deletes_no_table_that_lies_in_the_source_of_a_kept_version(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R2 for tables: a version by reference whose source is the store's own references/ (the commit refuses one;
    its guard is bypassed here, as a forged record would be) keeps the table of a dropped version there, counted in
    ``in_sources``; the CLI says what a dry run would remove."""
    src = write_tree(tmp_path / "src", {"a.txt": b"one"})
    first = store.commit("images", src, by_reference=True)
    write_tree(src, {"a.txt": b"two"})
    store.commit("images", src, by_reference=True)
    assert first.reference is not None
    table = layout.reference_key(first.reference.table)
    monkeypatch.setattr(Store, "_guard_reference", lambda self, source: None)
    store.commit("inside", store.url + "/references/", by_reference=True)
    report = store.gc(keep_last=1, grace=timedelta(0))
    assert (report.versions_deleted, report.tables_deleted, report.in_sources) == (["images@1"], [], 1)
    assert table in _tables(store)


def test_the_cli_lists_the_tables_gc_would_remove(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _s3(seaweedfs, make_store, versioned=True)
    _fill(source)
    first = source.store().commit("images", source.url, by_reference=True)
    source.write("d/b.txt", b"changed")
    source.store().commit("images", source.url, by_reference=True)
    assert first.reference is not None
    for key, value in {**seaweedfs.env(), "GITFREE_STORE": s3_url, "GITFREE_CACHE_DIR": str(tmp_path / "c")}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["gc", "--keep-last", "1", "--grace", "0s", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"  table   {layout.reference_key(first.reference.table)}" in lines
    assert "1 reference table no kept version names would be removed" in lines
    done = CliRunner().invoke(cli, ["gc", "--keep-last", "1", "--grace", "0s"])
    assert "1 reference table no kept version names removed" in done.output.splitlines(), done.output


# ---------------------------------------------------------------------------- the tables a process keeps


def test_a_long_lived_reader_keeps_a_bounded_number_of_reference_tables(
    make_store: Callable[..., Store], tmp_path: Path
) -> None:
    """A web view or a worker reads version after version: it keeps the last REFERENCES_KEPT tables, and reads a
    dropped one again when its version is read again, also when it was dropped after the read's show."""
    most, _ = REFERENCES_KEPT
    writer = make_store("file")
    for i in range(most + 4):
        folder = write_tree(tmp_path / f"src{i}", {"f.txt": f"file {i}".encode()})
        writer.commit(f"ds{i}", folder, by_reference=True)
    reader = make_store("file")
    for i in range(most + 4):
        assert reader.open(f"ds{i}@1", "f.txt").read() == f"file {i}".encode()
        assert len(reader.objects._referenced) <= most
    assert len(reader.objects._referenced) == most
    shutil.rmtree(reader.cache_dir)  # so the read goes to the source again, through a table read again
    assert reader.open("ds0@1", "f.txt").read() == b"file 0"
    assert len(reader.objects._referenced) == most
    # A read whose table other reads dropped between its show and its fetch (threads of a web view) learns it
    # again: here ds4's and ds5's, dropped by the reads above, are read by the steps that follow a show.
    md5s = {i: hashlib.md5(f"file {i}".encode(), usedforsecurity=False).hexdigest() for i in (4, 5)}
    assert reader.objects.verified("ds4@1", md5s[4]).read_bytes() == b"file 4"
    entry = FileEntry(path="f.txt", md5=md5s[5], size=6)
    assert reader.objects.peek_file("ds5@1", entry, 0, 4) == b"file"
