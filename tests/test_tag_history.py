"""Tag history and untag (docs/design.md, "Tag moves"): every creation, move and deletion of a tag is one
create-only history entry, in the order the writes took effect, with no lock — also when writers race or are
killed between their swap and their entry; a deleted tag is absent to every reader, to GC and to fsck."""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _workers import tag_move_killed_before_its_entry, tag_moves_after_barrier
from figures import Figures
from helpers import write_tree

from gitfree import Author, ConflictError, NotFoundError, Store, TagEvent
from gitfree.faults import InjectedFault
from gitfree.testing import Faults, SeaweedFS
from gitfree.versioning import layout

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def file_store(make_store: Callable[..., Store]) -> Store:
    """For what does not depend on the backend (the protocol's writes are tested on both)."""
    return make_store("file")


def _versions(store: Store, tmp_path: Path, n: int, dataset: str = "ds") -> None:
    for i in range(1, n + 1):
        store.commit(dataset, write_tree(tmp_path / f"v{i}", {"f": f"version {i}".encode()}))


def _stored_entries(store: Store, dataset: str, tag: str) -> dict[int, TagEvent]:
    """The history entries in the store, by seq, read key by key (not through tag_history)."""
    found = {}
    for key in store.backend.list(layout.tag_history_prefix(dataset, tag)):
        parsed = layout.parse_tag_event_key(key)
        assert parsed is not None, key
        found[parsed[2]] = TagEvent.model_validate_json(store.backend.get(key)[0])
    return found


def _assert_chained(history: list[TagEvent]) -> None:
    """seq 1, 2, 3... with no gap, and each event starts where the one before it ended."""
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    for before, after in itertools.pairwise(history):
        assert after.previous == before.number, (before, after)


def test_every_write_of_a_tag_is_one_entry_in_order(store: Store, tmp_path: Path) -> None:
    _versions(store, tmp_path, 3)
    ci = Author(user="ci", host="runner-1", orchestrator="prefect", pipeline="release", run_id="r-7", task_id="t-1")
    made = [
        store.tag("ds@1", "prod", message="first release", author=ci),
        store.tag("ds@2", "prod", move=True, message="hotfix"),
        store.tag("ds@3", "prod", expect=2),
        store.untag("ds", "prod", message="retired"),
        store.tag("ds@1", "prod", message="back"),  # a deleted tag is created again without --move
    ]
    assert [(t.seq, t.number, t.previous, t.deleted, t.written) for t in made] == [
        (1, 1, None, False, True),
        (2, 2, 1, False, True),
        (3, 3, 2, False, True),
        (4, 3, 3, True, True),
        (5, 1, None, False, True),
    ]
    history = store.tag_history("ds", "prod")
    _assert_chained(history)
    assert [(e.action, e.previous, e.number, e.message) for e in history] == [
        ("created", None, 1, "first release"),
        ("moved", 1, 2, "hotfix"),
        ("moved", 2, 3, ""),
        ("deleted", 3, None, "retired"),
        ("created", None, 1, "back"),
    ]
    assert history[0].author == ci
    assert [e.created_at for e in history] == [t.created_at for t in made]
    assert _stored_entries(store, "ds", "prod") == {e.seq: e for e in history}  # each written, once
    # Pointing it where it already points writes nothing: no entry.
    again = store.tag("ds@1", "prod")
    assert (again.written, again.seq) == (False, 5)
    assert len(store.tag_history("ds", "prod")) == 5


def test_racing_moves_each_have_exactly_one_entry_in_the_order_they_took_effect(
    s3_store: Store, seaweedfs: SeaweedFS, tmp_path: Path, figures: Figures
) -> None:
    """Three processes move one tag eight times each, released together; half the moves are compare-and-swap
    (``expect=``) and lose some races. Every move that returned a written record has exactly one entry, at
    the seq it returned, with its own message, and the entries chain."""
    _versions(s3_store, tmp_path, 4)
    s3_store.tag("ds@1", "race", message="start")
    movers, moves = 3, 8
    barrier, results = SPAWN.Barrier(movers), SPAWN.Queue()
    procs = [
        SPAWN.Process(
            target=tag_moves_after_barrier,
            args=(barrier, results, s3_store.url, seaweedfs.store_options(), "ds", "race", m, moves),
        )
        for m in range(movers)
    ]
    for proc in procs:
        proc.start()
    outcomes: list[tuple[Any, ...]] = []
    done = 0
    while done < movers:
        item = results.get(timeout=300)
        if item[0] == "done":
            done += 1
        else:
            outcomes.append(item)
    for proc in procs:
        proc.join(60)
    assert len(outcomes) == movers * moves
    written = {o[1]: o for o in outcomes if o[0] == "ok" and o[5]}
    conflicts = [o for o in outcomes if o[0] == "conflict"]
    assert all("moved by someone else" in o[2] or "not" in o[2] for o in conflicts), conflicts

    history = s3_store.tag_history("ds", "race")
    _assert_chained(history)
    assert history[0].message == "start"
    by_message = [e.message for e in history[1:]]
    assert sorted(by_message) == sorted(written), "a written move without its entry, or an entry of no move"
    for message, (_, _, seq, number, previous, _) in written.items():
        event = history[seq - 1]
        assert (event.message, event.number, event.previous) == (message, number, previous)
    assert _stored_entries(s3_store, "ds", "race") == {e.seq: e for e in history}
    assert s3_store.show("ds@race").number == history[-1].number
    unconditional = [o for o in outcomes if int(o[1].split("-")[1]) % 2 == 0]
    assert all(o[0] == "ok" for o in unconditional), "an unconditional move was refused"
    assert written, "no move was written"
    figures.add(
        "4. concurrent tags",
        f"{movers} processes x {moves} moves of one tag (half compare-and-swap): {len(written)} written, "
        f"{len(conflicts)} refused, {len(history)} history entries, 0 missing, 0 duplicated, chain unbroken",
    )


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_mover_killed_between_its_swap_and_its_entry_is_recorded_once(
    make_store: Callable[..., Store], seaweedfs: SeaweedFS, tmp_path: Path, kind: str
) -> None:
    """kill -9 after the tag's record was swapped to seq 2 and before entry 2 was written: the history still
    shows that move (made from the record), the next mover writes entry 2 before it replaces the record, and
    every entry is in the store once."""
    store = make_store(kind)
    _versions(store, tmp_path, 3)
    store.tag("ds@1", "prod")
    options = seaweedfs.store_options() if kind == "s3" else {}
    child = SPAWN.Process(
        target=tag_move_killed_before_its_entry, args=(store.url, options, "ds@2", "prod", 2), daemon=True
    )
    child.start()
    child.join(120)
    assert child.exitcode == -9, "the mover was not killed where it should have been"
    assert store.show("ds@prod").number == 2  # its swap landed
    assert sorted(_stored_entries(store, "ds", "prod")) == [1]  # and its entry did not

    history = store.tag_history("ds", "prod")
    _assert_chained(history)
    assert [(e.seq, e.number, e.message) for e in history] == [(1, 1, ""), (2, 2, "killed before its entry")]

    store.tag("ds@3", "prod", move=True, message="next")
    stored = _stored_entries(store, "ds", "prod")
    assert sorted(stored) == [1, 2, 3]
    assert stored[2].message == "killed before its entry"
    assert store.tag_history("ds", "prod") == [stored[1], stored[2], stored[3]]


@pytest.mark.parametrize("expect", [None, 1], ids=["move", "expect"])
def test_a_move_whose_answer_was_lost_is_recorded_once(store: Store, tmp_path: Path, expect: int | None) -> None:
    """The swap landed and its answer was lost: the mover reads its own record back, returns it as written,
    and the history has that move once (no second swap, no second entry)."""
    _versions(store, tmp_path, 2)
    store.tag("ds@1", "prod")
    with Faults(store) as faults:
        lost = faults.lose("replace", layout.tag_key("ds", "prod"))
        made = store.tag("ds@2", "prod", move=True, expect=expect, message="lost")
    assert lost.fired
    assert (made.seq, made.number, made.written) == (2, 2, True)
    history = store.tag_history("ds", "prod")
    assert [(e.seq, e.number, e.message) for e in history] == [(1, 1, ""), (2, 2, "lost")]
    assert sorted(_stored_entries(store, "ds", "prod")) == [1, 2]


def test_a_tag_written_before_history_was_kept_starts_with_its_record(file_store: Store, tmp_path: Path) -> None:
    _versions(file_store, tmp_path, 2)
    old = {
        "format": 1,
        "dataset": "ds",
        "tag": "prod",
        "number": 1,
        "created_at": "2025-01-02T03:04:05+00:00",
        "author": {"user": "ana", "host": "old-box"},
    }
    file_store.backend.create(layout.tag_key("ds", "prod"), json.dumps(old).encode())
    assert file_store.show("ds@prod").number == 1
    [first] = file_store.tag_history("ds", "prod")
    assert (first.seq, first.action, first.number, first.previous) == (0, "created", 1, None)
    assert first.author.host == "old-box" and "before tag history" in first.message
    moved = file_store.tag("ds@2", "prod", move=True)
    assert (moved.seq, moved.previous) == (1, 1)
    history = file_store.tag_history("ds", "prod")
    assert [(e.seq, e.previous, e.number) for e in history] == [(0, None, 1), (1, 1, 2)]
    assert sorted(_stored_entries(file_store, "ds", "prod")) == [0, 1]  # the old record's state is kept for good


def test_a_deleted_tag_is_absent_to_every_reader(file_store: Store, tmp_path: Path) -> None:
    _versions(file_store, tmp_path, 2)
    file_store.tag("ds@1", "prod")
    file_store.tag("ds@2", "keep")
    deleted = file_store.untag("ds", "prod", message="rolled back")
    assert (deleted.deleted, deleted.number, deleted.seq) == (True, 1, 2)
    with pytest.raises(NotFoundError, match=r"'prod' of 'ds' was deleted on .* UTC by .*'rolled back'.*version 1"):
        file_store.show("ds@prod")
    assert [t.tag for t in file_store.tags("ds")] == ["keep"]
    report = file_store.fsck()
    assert report.ok, report.problems
    assert report.tags == 1
    with pytest.raises(NotFoundError, match="no tag 'prod' to delete"):
        file_store.untag("ds", "prod")
    with pytest.raises(ConflictError, match="does not exist, so it is not at version 1"):
        file_store.tag("ds@2", "prod", expect=1)
    with pytest.raises(ConflictError, match="is at version 2, not 1"):
        file_store.untag("ds", "keep", expect=1)
    with pytest.raises(NotFoundError, match="has no tag 'nope' and never had; its tags are: keep"):
        file_store.tag_history("ds", "nope")
    assert file_store.tag("ds@2", "prod").seq == 3  # created again: the history goes on


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_gc_keeps_a_version_while_tagged_and_drops_it_once_its_tag_is_deleted(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    store = make_store(kind)
    _versions(store, tmp_path, 3)
    store.tag("ds@1", "old")
    assert store.gc(keep_last=1, grace=timedelta(0)).versions_deleted == ["ds@2"]
    assert store.show("ds@1").number == 1
    store.untag("ds", "old")
    assert store.gc(keep_last=1, grace=timedelta(0)).versions_deleted == ["ds@1"]
    with pytest.raises(NotFoundError, match="dropped by garbage collection"):
        store.show("ds@1")
    report = store.fsck()
    assert report.ok, report.problems  # a deleted tag's marker naming a dropped version is no dangling tag
    assert [e.action for e in store.tag_history("ds", "old")] == ["created", "deleted"]


def test_a_tag_named_like_a_store_segment_is_only_a_tag(store: Store, tmp_path: Path) -> None:
    """A tag may be named ``versions`` or ``tags``: its history (``tag-history/versions/<seq>.json``) is never
    read as the records of another dataset, by listings, GC or fsck."""
    _versions(store, tmp_path, 2)
    for name in ("versions", "tags"):
        store.tag("ds@1", name)
        store.tag("ds@2", name, move=True)
    assert store.datasets() == ["ds"]
    report = store.fsck()
    assert report.ok, report.problems
    assert (report.datasets, report.tags) == (1, 2)
    gc = store.gc(keep_last=1, grace=timedelta(0))
    assert gc.unreadable_records == [] and gc.sweep_skipped is None
    assert [e.number for e in store.tag_history("ds", "versions")] == [1, 2]


def test_a_history_entry_that_cannot_be_read_hides_no_other(file_store: Store, tmp_path: Path, caplog: Any) -> None:
    _versions(file_store, tmp_path, 3)
    for n in (1, 2, 3):
        file_store.tag(f"ds@{n}", "prod", move=True)
    file_store.backend.put(layout.tag_event_key("ds", "prod", 2), b"{not json")
    history = file_store.tag_history("ds", "prod")
    assert [e.seq for e in history] == [1, 3]
    assert "tag-history/prod/000000000002.json" in caplog.text


def test_an_entry_write_that_fails_leaves_the_record_unreplaced(file_store: Store, tmp_path: Path) -> None:
    """A move writes the entry of the record it replaces first; if that write fails, nothing is moved (the
    entry would otherwise be lost with the record)."""
    _versions(file_store, tmp_path, 3)
    with Faults(file_store) as faults:
        faults.fail("create", layout.tag_event_key("ds", "prod", 1), times=None)
        file_store.tag("ds@1", "prod")  # its own entry fails: only a warning, the record names the move
        with pytest.raises(InjectedFault):
            file_store.tag("ds@2", "prod", move=True)
    assert file_store.show("ds@prod").number == 1
    assert sorted(_stored_entries(file_store, "ds", "prod")) == []
    assert [e.seq for e in file_store.tag_history("ds", "prod")] == [1]
    file_store.tag("ds@2", "prod", move=True)
    assert sorted(_stored_entries(file_store, "ds", "prod")) == [1, 2]


def test_a_tag_record_removed_by_hand_starts_again_after_its_history(file_store: Store, tmp_path: Path) -> None:
    """No entry is ever written twice: a tag whose record is gone (removed by hand, or by an older gitfree)
    continues from the highest seq of its history, not from 1."""
    _versions(file_store, tmp_path, 2)
    file_store.tag("ds@1", "prod")
    file_store.tag("ds@2", "prod", move=True)
    file_store.backend.delete(layout.tag_key("ds", "prod"))
    made = file_store.tag("ds@1", "prod")
    assert (made.seq, made.previous) == (3, None)
    assert [(e.seq, e.action, e.number) for e in file_store.tag_history("ds", "prod")] == [
        (1, "created", 1),
        (2, "moved", 2),
        (3, "created", 1),
    ]


def test_times_are_the_writers_and_the_entry_is_the_records(file_store: Store, tmp_path: Path) -> None:
    _versions(file_store, tmp_path, 1)
    before = datetime.now(UTC)
    made = file_store.tag("ds@1", "prod", message="m")
    [event] = file_store.tag_history("ds", "prod")
    assert before <= event.created_at == made.created_at <= datetime.now(UTC)
    assert event == TagEvent.of(made)
