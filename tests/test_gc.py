"""Garbage collection and fsck against the real server: retention, shared objects, commits that run
while GC runs, a GC that crashes mid-sweep, repairs from the worker cache."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _workers import gc_until_killed
from click.testing import CliRunner
from figures import Figures
from helpers import ALL_KINDS, kind_of, read_tree, write_tree

from gitfree import ConflictError, InputError, IntegrityError, Store
from gitfree.cli import cli
from gitfree.testing import Clock, Faults, SeaweedFS
from gitfree.versioning import layout, leases
from gitfree.versioning.models import Latest, Lease, Uploads, utcnow

NOW = timedelta(0)
VERSIONS = re.compile(r"^datasets/[^/]+/versions/")


def _options(store: Store) -> dict[str, Any]:
    """The endpoint and credentials of ``store``, to open it again with another worker cache."""
    settings = store.settings
    options: dict[str, Any] = {"endpoint_url": settings.endpoint_url, "access_key_id": settings.access_key_id}
    options["secret_access_key"] = settings.secret_access_key
    return {k: v for k, v in options.items() if v is not None}


def _cli_args(store: Store, tmp_path: Path, _: None) -> list[str]:
    return ["--store", store.url, "--cache-dir", str(tmp_path / "cli-cache")]


def _objects(store: Store) -> set[str]:
    return {k for k in store.backend.list("files/md5/")}


def _wrongly_deleted(store: Store, keep: list[str]) -> int:
    """Objects of versions that must have been kept but are gone (must be 0)."""
    present = _objects(store)
    needed = set()
    for ref in keep:
        version = store.show(ref)
        needed.add(layout.object_key(version.md5))
        needed |= {layout.object_key(f.md5) for f in store.files(version)}
    return len(needed - present)


def test_retention_keeps_tags_heads_and_objects_shared_across_datasets(
    store: Store, make_store: Callable[..., Store], tmp_path: Path, figures: Figures
) -> None:
    shared = b"shared by a-1 and b-3"
    contents = {}
    for i in range(1, 6):
        contents[f"a@{i}"] = {"common": b"in every version of a", "only": f"a{i}".encode()}
        if i == 1:
            contents["a@1"]["shared"] = shared
        store.commit("a", write_tree(tmp_path / f"a{i}", contents[f"a@{i}"]))
    for i in range(1, 4):
        contents[f"b@{i}"] = {"only": f"b{i}".encode(), **({"x/shared": shared} if i == 3 else {})}
        store.commit("b", write_tree(tmp_path / f"b{i}", contents[f"b@{i}"]))
    store.tag("a@2", "prod")
    before = _objects(store)

    dry = store.gc(keep_last=2, grace=NOW, dry_run=True)
    assert _objects(store) == before, "a dry run deleted something"
    assert dry.versions_deleted == ["a@1", "a@3", "b@1"]

    report = store.gc(keep_last=2, grace=NOW)
    assert report.versions_deleted == dry.versions_deleted
    assert report.deleted == dry.deleted and report.bytes_deleted == dry.bytes_deleted
    assert report.objects_deleted == len(before - _objects(store)) > 0
    assert [v.number for v in store.log("a")] == [5, 4, 2]
    assert [v.number for v in store.log("b")] == [3, 2]
    kept = ["a@5", "a@4", "a@prod", "b@3", "b@2"]
    wrong = _wrongly_deleted(store, kept)
    assert wrong == 0
    fresh = make_store(kind_of(store))
    for ref in kept:
        version = store.show(ref)
        assert read_tree(fresh.pull(ref, tmp_path / "out" / ref.replace("@", "-"))) == contents[version.ref]
    assert store.fsck(deep=True).ok
    again = store.gc(keep_last=2, grace=NOW)
    assert again.versions_deleted == [] and again.objects_deleted == 0
    figures.add(
        "5. garbage collection",
        f"retention on {kind_of(store)}: {len(report.versions_deleted)} versions and "
        f"{report.objects_deleted} objects ({report.bytes_deleted} B) deleted, dry run identical, "
        f"{len(kept)} kept versions pull back identical, objects wrongly deleted: {wrong}",
    )


def test_keep_within_and_no_policy(store: Store, tmp_path: Path) -> None:
    for i in range(1, 3):
        store.commit("ds", write_tree(tmp_path / f"s{i}", {"f": f"{i}".encode()}))
    time.sleep(2.2)
    store.commit("ds", write_tree(tmp_path / "s3", {"f": b"3"}))
    assert store.gc(grace=NOW).versions_deleted == []  # no policy: every version is kept
    assert store.gc(keep_within=timedelta(hours=1), grace=NOW).versions_deleted == []
    report = store.gc(keep_within=timedelta(seconds=1), grace=NOW)
    assert report.versions_deleted == ["ds@1", "ds@2"]
    assert [v.number for v in store.log("ds")] == [3]
    # The head is kept whatever the policy, so numbering goes on from it.
    assert store.commit("ds", write_tree(tmp_path / "s4", {"f": b"4"})).number == 4


def test_orphans_go_only_after_the_grace_period(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "s", {"f": b"kept"}))
    orphan = layout.object_key("0" * 32)
    store.backend.put(orphan, b"left by a crashed commit")
    # The crashed commit had written its upload journal (under a lease that is gone now) first.
    lease = uuid.uuid4()
    journal = Uploads(lease=lease, dataset="ds", created_at=utcnow(), objects=["0" * 32])
    store.backend.put(layout.upload_key(str(lease)), journal.model_dump_json().encode())
    report = store.gc()
    assert report.objects_too_young == 1 and orphan in _objects(store)
    assert store.backend.exists(layout.upload_key(str(lease))), "kept while its objects wait out the grace period"
    assert store.gc(grace=NOW).deleted == [orphan]
    assert not store.backend.exists(layout.upload_key(str(lease)))
    assert store.fsck(deep=True).ok


def test_bad_policies_are_refused(store: Store) -> None:
    with pytest.raises(InputError, match="keep_last"):
        store.gc(keep_last=0)
    with pytest.raises(InputError, match="grace"):
        store.gc(grace=timedelta(seconds=-1))


@pytest.mark.kinds(*ALL_KINDS)
def test_a_commit_paused_between_upload_and_record_survives_gc(store: Store, tmp_path: Path, figures: Figures) -> None:
    """The dangerous case: the new version re-uses objects that only a version GC drops references."""
    old = {"a": b"object only the dropped version references", "b": b"another one"}
    store.commit("ds", write_tree(tmp_path / "v1", old))
    store.commit("ds", write_tree(tmp_path / "v2", {"c": b"the head"}))
    new = {**old, "d": b"new"}
    with Faults(store) as faults:
        # Held just before the create of its record: uploaded, lease checked (Commit steps 6 and 7).
        uploaded = faults.pause("create", VERSIONS)
        result: dict[str, Any] = {}
        writer = threading.Thread(target=lambda: result.update(v=store.commit("ds", write_tree(tmp_path / "v3", new))))
        writer.start()
        assert uploaded.reached.wait(60)
        report = store.gc(keep_last=1, grace=NOW)
        uploaded.resume.set()
        writer.join(60)
    assert report.versions_deleted == ["ds@1"] and report.leases_live == 1
    version = result["v"]
    assert version.number == 3
    check = store.fsck(deep=True)
    assert check.ok, check.problems
    assert read_tree(store.pull("ds", tmp_path / "out")) == new
    figures.add(
        "5. garbage collection",
        f"commit paused between upload and record during GC ({kind_of(store)}): version complete, "
        f"fsck clean, {report.objects_deleted} objects deleted, objects of the paused commit deleted: 0",
    )


def test_a_commit_that_starts_during_gc_waits_for_it(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1"}))
    with Faults(store) as faults:
        # GC held holding its lock, just before it lists the leases (its phase 2).
        locked = faults.pause("list", layout.LEASES)
        gc_thread = threading.Thread(target=lambda: store.gc(keep_last=1, grace=NOW))
        gc_thread.start()
        assert locked.reached.wait(60)
        assert store.backend.exists(layout.GC_LOCK)
        done = threading.Event()

        def commit_then_say_so() -> None:
            store.commit("ds", write_tree(tmp_path / "v2", {"a": b"1", "b": b"2"}))
            done.set()

        writer = threading.Thread(target=commit_then_say_so)
        writer.start()
        assert not done.wait(1.5), "the commit did not wait for the running GC"
        assert not list(store.backend.list(layout.LEASES)), "a waiting commit must withdraw its lease"
        locked.resume.set()
        gc_thread.join(60)
        writer.join(60)
    assert done.is_set()
    assert [v.number for v in store.log("ds")] == [2, 1]
    assert store.fsck(deep=True).ok


def test_commit_gives_up_waiting_with_a_clear_error(make_store: Callable[..., Store], tmp_path: Path) -> None:
    store = make_store("s3", settings=None)
    store.settings = store.settings.model_copy(update={"gc_wait": 0.5})
    holder = leases.Holder.new(store.backend, timedelta(minutes=5), key=layout.GC_LOCK, kind="gc")
    holder.lease = holder.lease.model_copy(update={"pid": os.getppid()})  # a live process, not us
    store.backend.create(layout.GC_LOCK, holder.lease.model_dump_json().encode())
    with pytest.raises(ConflictError, match=r"for garbage collection on .* to finish"):
        store.commit("ds", write_tree(tmp_path / "v", {"a": b"1"}))
    assert not list(store.backend.list(layout.LEASES))
    with pytest.raises(ConflictError, match="another garbage collection holds"):
        store.gc()


def _lease(store: Store, pointer: str | None, **update: Any) -> str:
    now = utcnow()
    lease = Lease(
        id=uuid.uuid4(),
        dataset="ds",
        pointer=pointer,
        host="elsewhere",
        pid=1,
        node=None,
        created_at=now,
        expires_at=now + timedelta(minutes=10),
    ).model_copy(update=update)
    key = layout.lease_key(str(lease.id))
    store.backend.create(key, lease.model_dump_json().encode())
    return key


def test_gc_waits_for_commits_still_uploading_and_removes_dead_leases(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "v", {"a": b"1"}))
    store.settings = store.settings.model_copy(update={"gc_wait": 0.5})
    uploading = _lease(store, "f" * 32 + ".dir")
    with pytest.raises(ConflictError, match="still uploading"):
        store.gc(grace=NOW)
    store.backend.delete(uploading)
    dead = _lease(store, "f" * 32 + ".dir", expires_at=utcnow() - timedelta(hours=1))
    crashed_here = _lease(store, "e" * 32 + ".dir", node=leases.node_id(), pid=2**22 + 7, host="this")
    report = store.gc(grace=NOW)
    assert report.leases_removed == 2 and report.leases_live == 0
    assert not store.backend.exists(dead) and not store.backend.exists(crashed_here)


def test_a_dead_gc_lock_is_taken_over(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "v", {"a": b"1"}))
    stale = Lease(
        id=uuid.uuid4(),
        kind="gc",
        host="gone",
        pid=1,
        created_at=utcnow() - timedelta(hours=2),
        expires_at=utcnow() - timedelta(hours=1),
    )
    store.backend.create(layout.GC_LOCK, stale.model_dump_json().encode())
    store.gc(grace=NOW)
    assert not store.backend.exists(layout.GC_LOCK)
    assert store.commit("ds", write_tree(tmp_path / "v2", {"a": b"2"})).number == 2


def test_a_gc_lock_past_its_expiry_by_the_clock_is_taken_over(store: Store, tmp_path: Path) -> None:
    """A real lock, written by the code that takes it, of a GC that stopped renewing it: dead once the clock
    is past its expiry and the skew (no waiting, no forged record). Until then it holds."""
    store.commit("ds", write_tree(tmp_path / "v", {"a": b"1"}))
    stalled = store.coordinator.take_gc_lock()  # renewed every third of the TTL: not within this test
    try:
        with pytest.raises(ConflictError, match="another garbage collection holds"):
            store.gc(grace=NOW)
        with Clock() as clock:
            clock.advance(store.coordinator.ttl + store.coordinator.skew + timedelta(seconds=1))
            assert store.gc(grace=NOW).versions_kept == 1
            assert not store.backend.exists(layout.GC_LOCK)
            assert not stalled.renew(), "the stalled holder knows its lock lapsed"
    finally:
        stalled.release()
    assert store.commit("ds", write_tree(tmp_path / "v2", {"a": b"2"})).number == 2


def test_gc_stops_before_deleting_when_a_listing_is_unreadable(store: Store, tmp_path: Path) -> None:
    v1 = store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1"}))
    store.commit("ds", write_tree(tmp_path / "v2", {"b": b"2"}))
    store.backend.delete(layout.object_key(v1.md5))
    (store.cache_dir / layout.object_key(v1.md5)).unlink()
    before = _objects(store)
    with pytest.raises(IntegrityError, match="stopped before deleting anything"):
        store.gc(grace=NOW)
    assert _objects(store) == before


def test_gc_killed_mid_sweep_can_be_run_again(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path, figures: Figures
) -> None:
    store = Store(s3_url, cache_dir=tmp_path / "c", **seaweedfs.store_options())
    contents = [{"f": f"version {i}".encode(), "g": os.urandom(64)} for i in range(4)]
    for i, files in enumerate(contents):
        store.commit("ds", write_tree(tmp_path / f"v{i}", files))
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=gc_until_killed, args=(s3_url, seaweedfs.store_options(), str(tmp_path / "gc")))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL
    assert store.backend.exists(layout.GC_LOCK), "the killed GC left its lock"
    assert [v.number for v in store.log("ds")] == [4], "the records went first"
    leftover = len(_objects(store))
    report = store.gc(keep_last=1, grace=NOW)  # the dead GC's lock (same machine, pid gone) is taken over
    assert report.objects_deleted > 0 and len(_objects(store)) == leftover - report.objects_deleted
    assert _wrongly_deleted(store, ["ds@4"]) == 0
    assert store.fsck(deep=True).ok
    assert read_tree(store.pull("ds", tmp_path / "out")) == contents[-1]
    figures.add(
        "5. garbage collection",
        f"GC killed (SIGKILL) mid-sweep: re-run took over its lock and deleted the other {report.objects_deleted} "
        "objects; fsck clean; objects wrongly deleted: 0",
    )


# ---------------------------------------------------------------------------- fsck


@pytest.mark.kinds(*ALL_KINDS)
def test_fsck_reports_and_repairs(
    store: Store, make_store: Callable[..., Store], tmp_path: Path, figures: Figures, store_env: None
) -> None:
    files = {"a": b"alpha", "b": b"beta", "sub/c": b"gamma"}
    v1 = store.commit("ds", write_tree(tmp_path / "v1", files))
    v2 = store.commit("ds", write_tree(tmp_path / "v2", {**files, "d": b"delta"}))
    store.tag(v1, "prod")
    entries = {e.path: e.md5 for e in store.files(v2)}
    assert store.fsck().ok
    store.backend.delete(layout.object_key(entries["a"]))
    store.backend.put(layout.object_key(entries["d"]), b"bit rot")
    prod = store.backend.get(layout.tag_key("ds", "prod"))[0]
    store.backend.create(
        layout.tag_key("ds", "gone"), prod.replace(b'"number": 1', b'"number": 9').replace(b'"prod"', b'"gone"')
    )
    report = store.fsck(deep=True)
    kinds = {(p.kind, p.ref) for p in report.problems}
    assert ("missing_object", "ds@1") in kinds and ("missing_object", "ds@2") in kinds
    assert ("hash_mismatch", "ds@2") in kinds and ("dangling_tag", "ds@9") in kinds
    assert report.broken_versions == ["ds@1", "ds@2", "ds@9"]
    assert not report.ok

    # A worker without the objects cannot repair; the writer's worker cache can.
    assert not make_store(kind_of(store)).fsck(deep=True, repair=True).ok
    repaired = store.fsck(deep=True, repair=True)
    assert [p.kind for p in repaired.problems if not p.repaired] == ["dangling_tag"]
    assert sum(p.repaired for p in repaired.problems) == 3, repaired.problems
    assert read_tree(make_store(kind_of(store)).pull(v2, tmp_path / "o")) == {
        **files,
        "d": b"delta",
    }

    result = CliRunner().invoke(cli, [*_cli_args(store, tmp_path, store_env), "fsck", "--deep"])
    assert result.exit_code == 5, result.output
    assert "dangling tag" in result.output and "ds@9" in result.output
    figures.add(
        "6. fsck",
        f"{kind_of(store)}: 1 missing object (2 versions), 1 hash mismatch, 1 dangling tag found; "
        f"{sum(p.repaired for p in repaired.problems)} repaired from the worker cache; CLI exit 5",
    )


def test_quick_fsck_uses_etags_on_s3(s3_store: Store, tmp_path: Path) -> None:
    v = s3_store.commit("ds", write_tree(tmp_path / "v", {"a": b"1", "b": b"2"}))
    md5 = s3_store.files(v)[0].md5
    s3_store.backend.put(layout.object_key(md5), b"replaced")
    report = s3_store.fsck()
    assert report.bytes_hashed == 0 and report.unverified == 0
    assert [(p.kind, p.key) for p in report.problems] == [("hash_mismatch", layout.object_key(md5))]


@pytest.mark.kinds(*ALL_KINDS)
def test_gc_and_fsck_on_the_command_line(store: Store, tmp_path: Path, store_env: None) -> None:
    for i in range(3):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": f"{i}".encode()}))
    runner = CliRunner()
    base = _cli_args(store, tmp_path, store_env)
    dry = runner.invoke(cli, [*base, "gc", "--keep-last", "1", "--grace", "0", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 versions" in dry.output and "version ds@1" in dry.output
    bad = runner.invoke(cli, [*base, "gc", "--keep-within", "soon"])
    assert bad.exit_code == 2 and "not a duration" in bad.output
    real = runner.invoke(cli, [*base, "gc", "--keep-last", "1", "--grace", "0s"])
    assert real.exit_code == 0 and "deleted 2 versions" in real.output, real.output
    check = runner.invoke(cli, [*base, "fsck"])
    assert check.exit_code == 0 and "no problems" in check.output, check.output


def test_gc_moves_a_stale_latest_hint_past_the_versions_it_drops(store: Store, tmp_path: Path) -> None:
    """Found by the state machine: latest.json left at a dropped version made readers stop there."""
    first = store.commit("ds", write_tree(tmp_path / "v1", {"f": b"1"}))
    for i in (2, 3):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": f"{i}".encode()}))
    store.backend.put(layout.latest_key("ds"), Latest(number=1, version=first).model_dump_json().encode())
    store.gc(keep_last=1, grace=NOW)
    assert store.show("ds").number == 3
    assert store.commit("ds", write_tree(tmp_path / "v4", {"f": b"4"})).number == 4
    assert store.fsck().ok


def test_a_commit_whose_head_is_dropped_before_its_lease_uploads_everything(store: Store, tmp_path: Path) -> None:
    """The writer read head v1 (whose objects it will not re-upload), then GC dropped v1 before the
    writer's lease existed: the writer must notice and upload them after all."""
    old = {"a": b"only in v1", "b": b"also only in v1"}
    store.commit("ds", write_tree(tmp_path / "v1", old))
    new = {**old, "d": b"new"}
    with Faults(store) as faults:
        # Held just before the create of its lease (Commit step 5), after it read the head (step 3).
        read_head = faults.pause("create", layout.LEASES)
        result: dict[str, Any] = {}
        writer = threading.Thread(target=lambda: result.update(v=store.commit("ds", write_tree(tmp_path / "v3", new))))
        writer.start()
        assert read_head.reached.wait(60)
        other = Store(store.url, cache_dir=tmp_path / "other", **_options(store))
        other.commit("ds", write_tree(tmp_path / "v2", {"c": b"the new head"}))
        assert other.gc(keep_last=1, grace=NOW).versions_deleted == ["ds@1"]
        read_head.resume.set()
        writer.join(60)
    assert result["v"].number == 3
    check = store.fsck(deep=True)
    assert check.ok, check.problems
    assert read_tree(other.pull("ds", tmp_path / "out")) == new
