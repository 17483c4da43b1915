"""The promises of the reliability issue, each against the real server, each reporting its figure.

Small in the default suite; ``make reliability`` (``GITFREE_RELIABILITY=full``) runs the full sizes:
32 writers on one dataset, 8 writers on each of 4 datasets, more kill points, more tag races.
On S3 (SeaweedFS); also on Azure Blob (Azurite) and Google Cloud Storage (fake-gcs-server), smaller: writers on
one dataset (4; 8 at full size), a kill between the version record and latest.json (and, with ``make slow``, just
before the record), one round of the tag race (10 at full size), the stale tag moves.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _workers import commit_after_barrier, commit_and_crash, tag_after_barrier
from figures import FULL, Figures
from helpers import Servers, random_tree, read_tree, write_tree

from gitfree import ConflictError, Store
from gitfree.testing import Call, Faults
from gitfree.versioning import layout

SPAWN = multiprocessing.get_context("spawn")


#: The other kinds of object store the concurrency promises are kept on (each test runs on S3 too).
EMULATED = ("az", "gs")


def _reader(servers: Servers, kind: str, cache: Path) -> Store:
    return Store(servers.url(kind), cache_dir=cache, **servers.options(kind))


# ---------------------------------------------------------------------------- 1. many writers


def _race(servers: Servers, kind: str, tmp_path: Path, plan: list[tuple[str, Path]]) -> list[tuple[str, Any, str]]:
    """Start one process per (dataset, source), release them together, return (src, number, id|error)."""
    barrier, results = SPAWN.Barrier(len(plan)), SPAWN.Queue()
    url, options = servers.url(kind), servers.options(kind)
    procs = [
        SPAWN.Process(
            target=commit_after_barrier,
            args=(barrier, results, url, options, str(tmp_path / f"cache{i}"), dataset, str(src)),
        )
        for i, (dataset, src) in enumerate(plan)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return outcomes


@pytest.mark.parametrize(
    ("kind", "datasets", "writers"),
    [
        ("s3", 1, 32 if FULL else 6),
        ("s3", 4 if FULL else 2, 8 if FULL else 3),
        *((k, 1, 8 if FULL else 4) for k in EMULATED),
    ],
    ids=["one", "several", *(f"{k}-one" for k in EMULATED)],
)
def test_writers_released_together_lose_nothing(
    servers: Servers, tmp_path: Path, figures: Figures, kind: str, datasets: int, writers: int
) -> None:
    plan = []
    for d in range(datasets):
        for w in range(writers):
            files = {"who": f"dataset {d} writer {w}".encode(), "shared": b"same in all", f"own/{w}": bytes([w]) * 100}
            plan.append((f"ds{d}", write_tree(tmp_path / f"src-{d}-{w}", files)))
    outcomes = _race(servers, kind, tmp_path, plan)
    errors = [o for o in outcomes if o[1] is None]
    assert not errors, errors[:3]
    reader = _reader(servers, kind, tmp_path / "reader")
    found = gaps = 0
    ids: Counter[str] = Counter()
    identical = 0
    by_src = {src: (number, vid) for src, number, vid in outcomes}
    for d in range(datasets):
        numbers = sorted(v.number for v in reader.log(f"ds{d}"))
        found += len(numbers)
        gaps += numbers != list(range(1, writers + 1))
        ids.update(str(v.id) for v in reader.log(f"ds{d}"))
    for dataset, src in plan:
        number, _ = by_src[str(src)]
        out = reader.pull(f"{dataset}@{number}", tmp_path / "out" / f"{dataset}-{number}")
        identical += read_tree(out) == read_tree(src)
    duplicates = sum(c - 1 for c in ids.values())
    figures.add(
        "1. no lost commit",
        f"{writers} writers x {datasets} dataset(s) on {kind} released by a barrier: {len(plan)} versions expected, "
        f"{found} found, {gaps} datasets with gaps, {duplicates} duplicate ids, {identical}/{len(plan)} pull back "
        "byte-identical",
    )
    assert (found, gaps, duplicates, identical) == (len(plan), 0, 0, len(plan))


# ---------------------------------------------------------------------------- 3. crash at every step

STEPS = ["upload:1", "upload:40", "record", "latest", "lease"] + (["upload:5", "upload:120"] if FULL else [])


@pytest.mark.parametrize(
    ("kind", "step"),
    [
        *(pytest.param("s3", step, id=step) for step in STEPS),
        # on the emulators: killed between the version record and latest.json in the default suite, and just
        # before the record (the uploads orphaned) with `make slow`
        *(pytest.param(k, "latest", id=f"{k}-latest") for k in EMULATED),
        *(pytest.param(k, "record", id=f"{k}-record", marks=pytest.mark.slow) for k in EMULATED),
    ],
)
def test_killed_at_every_step_of_a_commit(
    servers: Servers, tmp_path: Path, figures: Figures, kind: str, step: str
) -> None:
    store = _reader(servers, kind, tmp_path / "first")
    v1 = random_tree(tmp_path / "v1", 20, seed=1)
    store.commit("ds", tmp_path / "v1")
    v2 = random_tree(tmp_path / "v2", 150, seed=2)
    proc = SPAWN.Process(
        target=commit_and_crash,
        args=(servers.url(kind), servers.options(kind), str(tmp_path / "crash"), "ds", str(tmp_path / "v2"), step),
    )
    proc.start()
    proc.join(180)
    assert proc.exitcode == -signal.SIGKILL, f"the fault at {step} was not reached (exit {proc.exitcode})"
    landed = step in ("latest", "lease")

    reader = _reader(servers, kind, tmp_path / "reader")
    assert [v.number for v in reader.log("ds")] == ([2, 1] if landed else [1])
    assert reader.show("ds").number == (2 if landed else 1)
    assert read_tree(reader.pull("ds@1", tmp_path / "o1")) == v1
    if landed:
        assert read_tree(reader.pull("ds@2", tmp_path / "o2")) == v2
    assert reader.fsck(deep=True).ok

    v3 = {"after": b"the crash"}
    nxt = reader.commit("ds", write_tree(tmp_path / "v3", v3))
    assert nxt.number == (3 if landed else 2)
    report = reader.gc(grace=timedelta(0))
    assert report.leases_live == 0, "the killed writer's lease must be judged dead (its process is gone)"
    if not landed:
        assert report.objects_deleted > 0 or step == "upload:1"
    check = reader.fsck(deep=True)
    assert check.ok, check.problems
    expected = [v1, v2, v3] if landed else [v1, v3]
    assert [read_tree(reader.pull(v, tmp_path / f"p{v.number}")) for v in reader.log("ds")][::-1] == expected
    figures.add(
        "3. crash at every step",
        f"SIGKILL at {step} ({kind}): readers saw {'the complete' if landed else 'no'} version 2, next commit got "
        f"{nxt.number}, gc removed {report.objects_deleted} orphaned objects and {report.leases_removed} dead "
        "lease(s), fsck --deep clean",
    )


# ---------------------------------------------------------------------------- 4. concurrent tags


@pytest.mark.parametrize("kind", ["s3", *EMULATED])
def test_two_writers_creating_one_tag(servers: Servers, tmp_path: Path, figures: Figures, kind: str) -> None:
    store = _reader(servers, kind, tmp_path / "c")
    for i in range(2):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": bytes([i])}))
    rounds = 10 if FULL else (2 if kind == "s3" else 1)
    winners = conflicts = 0
    for r in range(rounds):
        barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
        procs = [
            SPAWN.Process(
                target=tag_after_barrier,
                args=(barrier, results, servers.url(kind), servers.options(kind), f"ds@{i + 1}", f"race-{r}"),
            )
            for i in range(2)
        ]
        for proc in procs:
            proc.start()
        outcome = dict(results.get(timeout=120) for _ in procs)
        for proc in procs:
            proc.join(60)
        assert sorted(outcome.values()) == ["ConflictError", "ok"], outcome
        winner = next(ref for ref, result in outcome.items() if result == "ok")
        assert store.show(f"ds@race-{r}").number == int(winner.split("@")[1])
        winners += 1
        conflicts += 1
    figures.add(
        "4. concurrent tags",
        f"{rounds} rounds of 2 processes creating one tag on {kind}: {winners} winners, {conflicts} ConflictErrors, "
        "0 overwrites",
    )


@pytest.mark.parametrize("kind", ["s3", *EMULATED])
def test_moving_a_tag_with_a_stale_view_fails(make_store: Any, tmp_path: Path, figures: Figures, kind: str) -> None:
    store = make_store(kind)
    for i in range(3):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": bytes([i])}))
    store.tag("ds@1", "prod")
    other = make_store(kind)
    other.tag("ds@2", "prod", expect=1)
    with pytest.raises(ConflictError, match="not 1 as expected"):
        store.tag("ds@3", "prod", expect=1)
    assert store.show("ds@prod").number == 2

    # The same race inside one call: someone moves the tag between our read and our swap.
    def move_first(_: Call) -> None:
        if not moved:
            moved.append(other.tag("ds@1", "prod", move=True))

    moved: list[Any] = []
    with Faults(store) as faults:
        faults.call("replace", layout.tag_key("ds", "prod"), move_first)
        with pytest.raises(ConflictError, match="moved by someone else"):
            store.tag("ds@3", "prod", expect=2)  # compare-and-swap: the race is the caller's to see
        assert moved and store.show("ds@prod").number == 1
        # An unconditional move raced the same way swaps again: the last mover wins, nobody is refused.
        moved.clear()
        assert store.tag("ds@3", "prod", move=True).number == 3
        assert moved and store.show("ds@prod").number == 3
    figures.add(
        "4. concurrent tags",
        f"stale moves on {kind} (expect= twice, once raced inside the call): 2 ConflictErrors, tag kept the "
        "winner's value; an unconditional move raced inside the call swapped again and landed",
    )
