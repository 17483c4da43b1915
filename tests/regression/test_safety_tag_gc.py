"""Safety check: a tag is never left pointing at a version a concurrent garbage collection dropped.

A tag is a GC root written outside any lease. ``Store.tag`` writes the tag, then looks for the GC
lock (waiting while a GC runs), then reads the version again: a GC that took its lock before the
tag was written may not have seen it and may have dropped the version. Then the tag is withdrawn
and ``NotFoundError`` raised. Without the re-check the store is left with a dangling tag.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree

from gitfree import NotFoundError, Store
from gitfree.testing import Faults, Pause
from gitfree.versioning import layout
from gitfree.versioning.config import StoreSettings

OBJECTS = "files/md5/"
"""DVC's object layout: GC scans it only after it has read every record and tag and chosen what to drop."""


def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _pause_gc_after_reading_tags(faults: Faults) -> Pause:
    """Hold the next GC of the store ``faults`` wraps when it starts scanning objects: it holds its lock, has
    read every tag and has chosen the versions it drops, and has not changed anything yet."""
    return faults.pause("scan", OBJECTS)


def _three_versions(store: Store, tmp_path: Path) -> None:
    for i in range(1, 4):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": f"version {i}".encode()}))


@pytest.mark.parametrize("kind", ["s3", "file"])
@pytest.mark.parametrize(("ref", "dropped"), [("ds@1", True), ("ds@3", False)], ids=["dropped", "kept"])
def test_a_tag_written_while_gc_runs_is_kept_only_if_its_version_survives(
    make_store: Callable[..., Store],
    tmp_path: Path,
    kind: str,
    ref: str,
    dropped: bool,
) -> None:
    """No fault in the store: only the timing is arranged (the GC is held after reading the tags, the tag
    is written then, and the GC is let go once the tagger has seen its lock)."""
    tagger = make_store(kind, settings=StoreSettings(gc_wait=10))
    collector = make_store(kind)
    _three_versions(tagger, tmp_path)
    with Faults(collector) as gc_faults, Faults(tagger) as tag_faults:
        held = _pause_gc_after_reading_tags(gc_faults)
        gc, gc_out = _in_thread(collector.gc, keep_last=1, grace=timedelta(0))
        assert held.reached.wait(60), gc_out

        saw_lock = threading.Event()
        tag_faults.call("get", layout.GC_LOCK, lambda _: saw_lock.set(), when="after")
        tag, tag_out = _in_thread(tagger.tag, ref, "keep")
        assert saw_lock.wait(30), f"the tag did not see the running GC's lock: {tag_out}"
        held.resume.set()
        gc.join(60)
        tag.join(60)
    assert not gc.is_alive() and not tag.is_alive()
    assert "error" not in gc_out, gc_out
    assert gc_out["value"].versions_deleted == ["ds@1", "ds@2"]

    reader = make_store(kind)
    if dropped:
        assert isinstance(tag_out.get("error"), NotFoundError), f"the tag of a dropped version was kept: {tag_out}"
        assert [t.tag for t in reader.tags("ds")] == []
        with pytest.raises(NotFoundError):
            reader.show("ds@keep")
        withdrawn = reader.tag_history("ds", "keep")  # the withdrawal is kept in the tag's history
        assert [(e.action, e.number) for e in withdrawn] == [("created", 1), ("deleted", None)]
        assert "withdrawn: ds@1 was dropped by a garbage collection" in withdrawn[-1].message
    else:
        assert "error" not in tag_out, tag_out
        assert reader.show("ds@keep").number == 3
    check = reader.fsck()
    assert check.ok, check.problems


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_tag_stalled_while_a_whole_gc_dropped_its_version_is_not_kept(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """The narrow case: the GC read the tags before the tag was written and finished (lock released)
    before the tagger looked for the lock, so the tagger never sees a GC running and must re-read the
    version anyway. Fault injected in the client: the tagger stalls right after writing its tag (a
    process pause); no server can make a client stall."""
    tagger = make_store(kind, settings=StoreSettings(gc_wait=10))
    collector = make_store(kind)
    _three_versions(tagger, tmp_path)
    with Faults(collector) as gc_faults, Faults(tagger) as tag_faults:
        held = _pause_gc_after_reading_tags(gc_faults)
        gc, gc_out = _in_thread(collector.gc, keep_last=1, grace=timedelta(0))
        assert held.reached.wait(60), gc_out

        written = tag_faults.pause("create", layout.tag_key("ds", "keep"), when="after")
        tag, tag_out = _in_thread(tagger.tag, "ds@1", "keep")
        assert written.reached.wait(30), tag_out
        held.resume.set()
        gc.join(60)  # the whole GC ends while the tagger is stalled
        assert "error" not in gc_out, gc_out
        assert gc_out["value"].versions_deleted == ["ds@1", "ds@2"]
        written.resume.set()
        tag.join(60)
    assert not tag.is_alive()

    reader = make_store(kind)
    assert isinstance(tag_out.get("error"), NotFoundError), f"the tag of a dropped version was kept: {tag_out}"
    assert [t.tag for t in reader.tags("ds")] == []
    check = reader.fsck()
    assert check.ok, check.problems
