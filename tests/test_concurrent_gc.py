"""Invariant 1 with garbage collection running *concurrently*: a version number a writer was told names that
writer's bytes for ever, or a tombstone of that very version ("dropped"), never another writer's data.

Hypothesis draws a setup and a schedule of steps; each run starts and SIGKILLs real processes (spawn; the
functions at the end of ``_workers.py``) on a fresh store, on a real SeaweedFS and on ``file://``:

- writers, each committing data of its own in a loop (``who`` names the writer and the commit, so the bytes
  of any version say whose commit they are) and reporting every ``(number, id, created)`` it was told;
- one GC process looping ``gc(keep_last=k, grace=0)`` (hypothesis chooses the ``k``s and the pause between
  runs, down to none, as ``while true; do gitfree gc --keep-last 1 --grace 0s; done`` does);
- readers resolving ``ds@N``, ``ds@latest~K``, ``ds@prod`` and ``ds`` and pulling what they name.

Steps: let them run; SIGKILL a writer (in a commit or between two) or the GC (a moment into a run; the next
GC must take its lock over: same machine, pid gone); start a writer (perhaps on a second dataset) or a
reader; replace the GC by one with another policy; move a tag (from the test's process) to a number a writer
was told; settle. After every step the test drains every report and checks, for EVERY number any writer was
ever told, that ``store.show("ds@N")`` returns that writer's version (same id; its pulled bytes exactly that
commit's: pulled once per number, after which the md5 pins them) or raises ``NotFoundError`` saying it was
dropped by garbage collection, with a tombstone of the same id as its record (a number found dropped must
stay so: its record is read again at every step); that no number was told to two writers; that readers never
saw one number hold two contents, nor bytes that are not exactly one commit's; that a pull only failed on a
version that was dropped; that ``latest~K`` and the head move as they must; and that every tag names the
live version it was moved to. ``settle`` (a step, and the end of every run) stops every process, runs one
more GC in the test's process (which must take over a lock a killed GC left) and checks everything exactly:
numbers 1..N all taken, each a version or a tombstone, ``latest~K`` for every K, every live version's bytes
through a fresh worker cache, ``fsck(deep=True)`` clean, no lease left.

A failure lists every violation by kind (NUMBER REUSED, NUMBER LOST, ...) with who was told the number and
the events that name it, then the failing run's steps and events in time order; ``CGC_LOGS=DIR`` also writes
each run's log to DIR.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from _workers import commit_loop, gc_loop, read_loop, tree_digest, who_wrote
from figures import FULL, Figures
from helpers import read_tree
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gitfree import ConflictError, GitfreeError, NotFoundError, Store, Version
from gitfree.testing import SeaweedFS
from gitfree.versioning import layout, leases
from gitfree.versioning.backends import KeyMissing

SPAWN = multiprocessing.get_context("spawn")
PROMISE = "1. version numbers under concurrent GC"

# A killed holder's lease or lock is dead at once (same machine, pid gone) and by expiry within 6.5 s; a live
# writer renews every 2 s and refuses to write its record within 2 s of expiry, which a busy 2-core machine
# does not come near. Writers wait at most 10 s for a GC (then ConflictError), GC as long for uploads.
LEASE_TTL, CLOCK_SKEW, GC_WAIT = 6.0, 0.5, 10.0
MAX_WRITERS = 6 if FULL else 3
MAX_READERS = 2 if FULL else 1
EXAMPLES = 3 if FULL else 2
STEPS = 25 if FULL else 8
DATASETS = ["ds", "aux"]
TAGS = ["prod", "dev"]
DROPPED = "dropped by garbage collection"
KEEPS = st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=3)
PAUSES = st.sampled_from([0.05, 0.0, 0.2, 0.5])
STOP_TIMEOUT = GC_WAIT + 60


@dataclass
class Telling:
    writer: int
    seq: int
    id: str
    at: float


@dataclass
class Seen:
    """What a number held when read back (by a reader or by the test)."""

    id: str
    digest: str
    who: tuple[int, int] | None
    by: str


@dataclass
class Child:
    name: str
    kind: str
    ident: int
    process: BaseProcess
    queue: Any
    stop: Path
    """The file that asks it to stop."""
    dataset: str | None = None
    in_flight: int | None = None
    """The writer's commit in progress (reported started, not finished)."""
    commits: int = 0
    """Commits the writer started."""
    gc_started: float | None = None
    """When the GC run in progress started."""
    runs: int = 0
    """GC runs it finished."""
    exitcode: int | None = None


@dataclass(frozen=True)
class Record:
    """What ``versions/<N>.json`` holds, read as stored (``"dropped": true`` marks a tombstone)."""

    dropped: bool
    id: str


@dataclass
class Totals:
    """Observed outcomes of every run of the machine, for the figures and the report of a failure."""

    runs: int = 0
    steps: int = 0
    started: Counter[str] = field(default_factory=Counter)
    told: int = 0
    told_twice: set[tuple[int, str, int]] = field(default_factory=set)
    live_checked: set[tuple[int, str, int]] = field(default_factory=set)
    """Numbers told whose version the test pulled and found to be exactly its writer's bytes."""
    dropped_checked: set[tuple[int, str, int]] = field(default_factory=set)
    """Numbers told (or read) that the test found dropped, with a tombstone of the same version."""
    reads: int = 0
    read_contents: set[tuple[int, str, int, str]] = field(default_factory=set)
    two_contents: set[tuple[int, str, int]] = field(default_factory=set)
    read_failures: Counter[str] = field(default_factory=Counter)
    writer_kills: list[bool] = field(default_factory=list)
    """One per writer killed -9 (exit -SIGKILL observed): whether it was in a commit."""
    gc_kills: list[bool] = field(default_factory=list)
    """One per GC killed -9: whether it left its lock behind."""
    takeovers: int = 0
    """Locks of killed GCs that the next GC ran past before they would have expired."""
    gc_runs: int = 0
    versions_dropped: int = 0
    gc_errors: Counter[str] = field(default_factory=Counter)
    writer_errors: Counter[str] = field(default_factory=Counter)
    tags_moved: int = 0
    settles: int = 0
    fsck_clean: int = 0
    violations: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, subject) -> the first violation of that kind about that subject (e.g. a version ref)."""
    failed_run: tuple[str, list[str]] | None = None
    """The store and the log of steps and events of the run that found violations."""


def _records(store: Store, dataset: str, numbers: list[int]) -> dict[int, Record | str | None]:
    """The record of each number: a :class:`Record`, ``None`` if there is none, or why it cannot be read."""

    def one(number: int) -> Record | str | None:
        try:
            raw, _ = store.backend.get(layout.version_key(dataset, number))
        except KeyMissing:
            return None
        try:
            data = json.loads(raw)
            return Record(data.get("dropped") is True, str(data["id"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"unreadable ({exc!r}): {raw[:200]!r}"

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(numbers, pool.map(one, numbers), strict=True))


def _kind_of(exc_type: str, message: str) -> str:
    return f"{exc_type}: {message.split(';')[0][:90]}"


Action = tuple[Any, ...]
RUN = st.tuples(st.just("run"), st.sampled_from([1.0, 0.3, 2.0, 0.6]))
ACTIONS: st.SearchStrategy[Action] = st.one_of(
    # The first choice is what hypothesis tries first, in its simplest example: let everything run.
    RUN,
    st.tuples(st.just("kill_writer"), st.integers(min_value=0, max_value=63), st.floats(min_value=0, max_value=1.5)),
    st.tuples(st.just("kill_gc"), st.floats(min_value=0, max_value=0.4)),
    RUN,
    st.tuples(st.just("start_writer"), st.sampled_from(DATASETS)),
    st.tuples(st.just("tag"), st.integers(min_value=0, max_value=1023), st.sampled_from(TAGS)),
    st.tuples(st.just("new_gc"), KEEPS, PAUSES),
    st.tuples(st.just("start_reader"), st.integers(min_value=0, max_value=2**32)),
    st.tuples(st.just("settle"), st.sampled_from([1, 2, 3])),
)
# The simplest setup is the user's case: the most writers and a GC keeping the last version, in a loop.
SETUP = st.tuples(st.sampled_from(range(MAX_WRITERS, 1, -1)), KEEPS, PAUSES, st.integers(min_value=0, max_value=2**32))


class Run:
    """One schedule against one fresh store: the processes it started, what they reported, what was checked."""

    def __init__(self, totals: Totals, url: str, options: dict[str, Any], root: Path, writer_ids: Any) -> None:
        self.totals = totals
        self.run = totals.runs = totals.runs + 1
        self.url, self.options, self.root = url, options, root
        self.writer_ids = writer_ids
        self.store = Store(url, cache_dir=root / "test-cache", **options)
        self.children: dict[str, Child] = {}
        self.told: dict[tuple[str, int], Telling] = {}
        self.seen: dict[tuple[str, int], Seen] = {}
        self.verified: dict[tuple[str, int], str] = {}
        """Numbers whose bytes the test pulled and found right, and the md5 that pins them."""
        self.dropped: dict[tuple[str, int], str] = {}
        """Numbers found dropped, and the id their tombstone names."""
        self.suspect: dict[tuple[str, int], str] = {}
        """Numbers a reader found gone or could not pull: they must be dropped."""
        self.tags: dict[tuple[str, str], int] = {}
        self.dropped_by: dict[str, list[str]] = {}
        """``ds@N`` -> the GC runs that reported dropping it."""
        self.tellings: dict[str, list[Telling]] = {}
        """``ds@N`` -> every writer told it (one, unless the number was reused)."""
        self.lock_left: tuple[int, float] | None = None
        """A killed GC's lock still in the store: its pid and when it would have expired by itself."""
        self.gc_plan: tuple[list[int], float] = ([1], 0.05)
        self.events: list[tuple[float, str]] = []
        self.wall0 = time.time()
        self.violated = False
        self.settles = 0

    # ---------------------------------------------------------------- processes

    def _spawn(
        self, kind: str, ident: int, target: Callable[..., None], *args: Any, dataset: str | None = None
    ) -> None:
        queue = SPAWN.SimpleQueue()
        name = f"{kind}{ident}"
        stop = self.root / f"stop-{name}"
        process = SPAWN.Process(target=target, args=(queue, *args, str(stop)), name=name, daemon=True)
        process.start()
        self.children[name] = Child(name, kind, ident, process, queue, stop, dataset=dataset)
        self.totals.started[kind] += 1
        self._event(f"started {name} (pid {process.pid}){f' on {dataset}' if dataset else ''}")

    def _alive(self, kind: str) -> list[Child]:
        return [c for c in self.children.values() if c.kind == kind and c.exitcode is None]

    def _committing(self) -> list[Child]:
        """Writers that started committing (killing one still importing would test nothing)."""
        return [c for c in self._alive("writer") if c.commits]

    def _event(self, text: str, at: float | None = None) -> None:
        self.events.append((at or time.time(), text))

    def log(self) -> list[str]:
        return [f"{at - self.wall0:7.2f}s {text}" for at, text in sorted(self.events, key=lambda e: e[0])]

    def _start_writer(self, dataset: str) -> None:
        ident = next(self.writer_ids)
        work = self.root / f"writer{ident}"
        work.mkdir(parents=True)
        args = (self.url, self.options, str(work / "cache"), str(work), dataset, ident)
        self._spawn("writer", ident, commit_loop, *args, dataset=dataset)

    def _start_gc(self, keeps: list[int], pause: float) -> None:
        self.gc_plan = (keeps, pause)
        ident = self.totals.started["gc"] + 1
        cache = self.root / f"gc{ident}-cache"
        self._spawn("gc", ident, gc_loop, self.url, self.options, str(cache), keeps, pause)
        self._event(f"gc{ident} keeps {keeps}, pause {pause}s")

    def _start_reader(self, seed: int) -> None:
        ident = self.totals.started["reader"] + 1
        work = self.root / f"reader{ident}"
        work.mkdir(parents=True)
        args = (self.url, self.options, str(work / "cache"), str(work), DATASETS, seed)
        self._spawn("reader", ident, read_loop, *args)

    def _kill(self, child: Child) -> None:
        os.kill(child.process.pid or 0, signal.SIGKILL)
        child.process.join(30)  # reaped at once: a zombie's pid still answers kill(pid, 0)
        child.exitcode = child.process.exitcode
        self._event(f"killed {child.name}: exit {child.exitcode}")

    def _stop(self, children: list[Child]) -> None:
        """Ask them to stop after what they are doing; a process that does not is a hang."""
        for child in children:
            child.stop.touch()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in children:
            child.process.join(max(0.1, deadline - time.monotonic()))
            if child.process.is_alive():
                self._violation(
                    "HANG", child.name, f"{child.name} did not stop within {STOP_TIMEOUT:.0f}s of being asked"
                )
                self._kill(child)
        self._drain_all()

    def close(self) -> None:
        for child in self.children.values():
            if child.process.is_alive():
                self._kill(child)
            child.queue.close()

    # ---------------------------------------------------------------- the schedule

    def begin(self, writers: int, keeps: list[int], pause: float, seed: int) -> None:
        self._event(f"STEP begin({writers} writers, GC keeps {keeps} pause {pause}s, reader seed {seed})")
        for _ in range(writers):
            self._start_writer("ds")
        self._start_gc(keeps, pause)
        self._start_reader(seed)

    def step(self, action: Action) -> None:
        what, *args = action
        shown = ", ".join(f"{a:.2f}" if isinstance(a, float) else str(a) for a in args)
        self._event(f"STEP {what}({shown})")
        getattr(self, f"do_{what}")(*args)

    def do_run(self, seconds: float) -> None:
        time.sleep(seconds)

    def do_start_writer(self, dataset: str) -> None:
        if len(self._alive("writer")) < MAX_WRITERS:
            self._start_writer(dataset)

    def do_start_reader(self, seed: int) -> None:
        if len(self._alive("reader")) < MAX_READERS:
            self._start_reader(seed)

    def do_new_gc(self, keeps: list[int], pause: float) -> None:
        """The GC is stopped after its run and another starts, with another policy."""
        self._stop(self._alive("gc"))
        self._start_gc(keeps, pause)

    def do_kill_writer(self, index: int, delay: float) -> None:
        deadline = time.monotonic() + 10
        while not self._committing() and time.monotonic() < deadline:
            time.sleep(0.05)
            self._drain_all()
        if not self._committing():
            return
        writers = self._committing()
        child = writers[index % len(writers)]
        time.sleep(delay)
        self._kill(child)
        self._drain(child)  # what it reported before it died
        if child.exitcode == -signal.SIGKILL:
            self.totals.writer_kills.append(child.in_flight is not None)
        self._event(
            f"{child.name} was killed {f'in commit {child.in_flight}' if child.in_flight else 'between commits'}"
        )
        self._start_writer(child.dataset or "ds")  # another takes its place

    def do_kill_gc(self, delay: float) -> None:
        """SIGKILL the GC ``delay`` seconds into a run (after it finished one), then start the next GC, which
        must take the dead one's lock over."""
        if not self._alive("gc"):
            return
        child = self._alive("gc")[0]
        deadline = time.monotonic() + 10
        self._drain(child)
        while (not child.runs or child.gc_started is None) and time.monotonic() < deadline:
            time.sleep(0.01)
            self._drain(child)
        time.sleep(delay)
        self._kill(child)
        self._drain(child)
        found = leases.read(self.store.backend, layout.GC_LOCK)
        left = found is not None and found[0].pid == child.process.pid
        if found is not None and left:
            self.lock_left = (found[0].pid, (found[0].expires_at + timedelta(seconds=CLOCK_SKEW)).timestamp())
        if child.exitcode == -signal.SIGKILL:
            self.totals.gc_kills.append(left)
        self._event(f"{child.name} was killed {'holding' if left else 'not holding'} the GC lock")
        self._start_gc(*self.gc_plan)

    def do_tag(self, index: int, name: str) -> None:
        """Move a tag to a number some writer was told and not yet found dropped (it may be dropped by now)."""
        candidates = sorted(k for k in self.told if k not in self.dropped) or sorted(self.told)
        if not candidates:
            return
        dataset, number = candidates[index % len(candidates)]
        before = self.tags.get((dataset, name))
        try:
            self.store.tag(f"{dataset}@{number}", name, move=True)
        except NotFoundError as exc:
            # Refused before it wrote (the tag is where it was), or withdrawn after (the tag is gone).
            self._event(f"tag {dataset}@{name} -> {number} refused: {exc}")
            self.suspect[dataset, number] = f"tagging it said: {exc}"
            now = {t.tag: t.number for t in self.store.tags(dataset)}.get(name)
            if now not in (before, None):
                self._violation("TAG", f"{dataset}@{name}", f"after a refused move from {before}, it is at {now}")
            if now is None:
                self.tags.pop((dataset, name), None)
        except ConflictError as exc:
            self.totals.gc_errors[f"tag: {_kind_of('ConflictError', str(exc))}"] += 1
        else:
            self.tags[dataset, name] = number
            self.totals.tags_moved += 1
            self._event(f"tag {dataset}@{name} -> {number}")

    def do_settle(self, keep_last: int) -> None:
        """Stop everything, check exactly, then start the same again in new processes."""
        running = [c for c in self.children.values() if c.exitcode is None]
        self.settle(keep_last)
        for child in running:
            if child.kind == "writer":
                self._start_writer(child.dataset or "ds")
            elif child.kind == "gc":
                self._start_gc(*self.gc_plan)
            else:
                self._start_reader(child.ident * 7919)

    # ------------------------------------------------------------ reports

    def _violation(self, kind: str, subject: str, text: str) -> None:
        self.violated = True
        if (kind, subject) not in self.totals.violations:
            self.totals.violations[kind, subject] = text
            self._event(f"VIOLATION {kind} {subject}: {text.splitlines()[0][:300]}")

    def _drain(self, child: Child) -> None:
        while not child.queue.empty():
            self._report(child, child.queue.get())

    def _drain_all(self) -> None:
        for child in list(self.children.values()):
            self._drain(child)
            if child.exitcode is None and not child.process.is_alive():
                child.process.join()
                child.exitcode = child.process.exitcode
                self._drain(child)
                if child.exitcode != 0:
                    self._violation("CRASH", child.name, f"{child.name} exited by itself with {child.exitcode}")

    def history(self, ref: str) -> str:
        """Who was told ``ref``, which GC runs reported dropping it, and the events that name it."""
        told = [f"writer{t.writer} (commit {t.seq}, at {t.at - self.wall0:.2f}s)" for t in self.tellings.get(ref, [])]
        runs = self.dropped_by.get(ref, [])
        mentions = [line for line in self.log() if f"{ref} " in line or f"{ref}'" in line or line.endswith(ref)]
        lines = "\n      ".join(mentions[-16:])
        return (
            f"\n    ({ref} was told to {', '.join(told) or 'no writer'}; GC runs that reported dropping it: "
            f"{', '.join(runs) or 'none'}; the events that name it:\n      {lines})"
        )

    def _report(self, child: Child, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "start":
            child.in_flight = msg[2]
            child.commits += 1
            self._event(f"writer{msg[1]} starts commit {msg[2]}", msg[3])
        elif kind == "told":
            child.in_flight = None
            _, writer, seq, dataset, number, vid, created, at = msg
            self._told(child, writer, seq, dataset, number, vid, created, at)
        elif kind == "error":
            child.in_flight = None
            _, writer, seq, dataset, exc_type, text, at = msg
            self.totals.writer_errors[_kind_of(exc_type, text)] += 1
            self._event(f"writer{writer} commit {seq} to {dataset}: {exc_type}: {text[:160]}", at)
            if exc_type != "ConflictError":
                self._violation("WRITER", f"{exc_type} {text[:60]}", f"writer{writer} commit {seq}: {exc_type}: {text}")
        elif kind == "gc-start":
            child.gc_started = msg[3]
            self._event(f"{child.name} run {msg[1]} (keep {msg[2]}) starts", msg[3])
        elif kind == "gc":
            _, run, _keep, started, ended, deleted, objects, removed = msg
            child.gc_started = None
            child.runs += 1
            self.totals.gc_runs += 1
            self.totals.versions_dropped += len(deleted)
            for ref in deleted:
                self.dropped_by.setdefault(ref, []).append(f"{child.name} run {run}")
            self._gc_succeeded(started, f"{child.name} run {run}")
            self._event(f"{child.name} run {run} ends: dropped {deleted}, {objects} objects, {removed} leases", ended)
        elif kind == "gc-error":
            _, run, _keep, started, ended, exc_type, text = msg
            child.gc_started = None
            child.runs += 1
            self.totals.gc_errors[_kind_of(exc_type, text)] += 1
            self._event(f"{child.name} run {run} failed: {exc_type}: {text[:200]}", ended)
            # One GC runs at a time here: a lock it finds is a killed one's, and must be taken over.
            if exc_type != "ConflictError" or "another garbage collection" in text:
                self._violation("GC", f"{child.name} run {run}", f"{exc_type}: {text}")
        elif kind == "read":
            self._read(child, *msg[1:])
        elif kind == "read-error":
            self._read_error(child, *msg[1:])

    def _told(
        self,
        child: Child,
        writer: int,
        seq: int,
        dataset: str,
        number: int,
        vid: str,
        created: bool | None,
        at: float,
    ) -> None:
        key, ref = (dataset, number), f"{dataset}@{number}"
        self.totals.told += 1
        self._event(f"writer{writer} is told {ref} for commit {seq} (id {vid[:8]}, created {created})", at)
        if child.dataset != dataset:
            self._violation("WRITER", ref, f"writer{writer} commits to {child.dataset}, was told {ref}")
        if created is False:  # no other writer commits these bytes
            self._violation("WRITER", ref, f"writer{writer} was told {ref} with created=False for its own data")
        self.tellings.setdefault(ref, []).append(Telling(writer, seq, vid, at))
        earlier = self.told.get(key)
        if earlier is not None:
            self.totals.told_twice.add((self.run, dataset, number))
            self._violation(
                "NUMBER REUSED",
                ref,
                f"{ref} was told to writer{earlier.writer} (commit {earlier.seq}, id {earlier.id}, at "
                f"{earlier.at - self.wall0:.2f}s) and to writer{writer} (commit {seq}, id {vid}, at "
                f"{at - self.wall0:.2f}s)",
            )
            return
        self.told[key] = Telling(writer, seq, vid, at)
        seen = self.seen.get(key)
        if seen is not None and (seen.id != vid or seen.who != (writer, seq)):
            self._violation(
                "NUMBER REUSED",
                ref,
                f"{ref} was told to writer{writer} (commit {seq}, id {vid}) but {seen.by} had read it holding "
                f"id {seen.id}, the bytes of {seen.who}",
            )
        tombstone = self.dropped.get(key)
        if tombstone is not None and tombstone != vid:
            self._violation(
                "NUMBER REUSED",
                ref,
                f"{ref} was told to writer{writer} (commit {seq}, id {vid}) after it was found dropped (a "
                f"tombstone of id {tombstone})",
            )

    def _saw(self, key: tuple[str, int], seen: Seen) -> None:
        dataset, number = key
        ref = f"{dataset}@{number}"
        if seen.who is None:
            self._violation("BYTES", ref, f"{seen.by} read {ref} (id {seen.id}): the bytes of no single commit")
            return
        earlier = self.seen.setdefault(key, seen)
        if (earlier.id, earlier.digest) != (seen.id, seen.digest):
            self.totals.two_contents.add((self.run, dataset, number))
            self._violation(
                "TWO CONTENTS",
                ref,
                f"{ref} held id {earlier.id} (the bytes of {earlier.who}, read by {earlier.by}) and id "
                f"{seen.id} (the bytes of {seen.who}, read by {seen.by})",
            )
        telling = self.told.get(key)
        if telling is not None and (telling.id, (telling.writer, telling.seq)) != (seen.id, seen.who):
            self._violation(
                "NUMBER REUSED",
                ref,
                f"{ref} was told to writer{telling.writer} (commit {telling.seq}, id {telling.id}) but {seen.by} "
                f"read id {seen.id}, the bytes of {seen.who}",
            )
        self.totals.read_contents.add((self.run, dataset, number, seen.digest))

    def _read(
        self,
        child: Child,
        kind: str,
        ref: str,
        dataset: str,
        number: int,
        vid: str,
        digest: str,
        who: tuple[int, int] | None,
        before: int,
        after: int,
        at: float,
    ) -> None:
        self.totals.reads += 1
        self._saw((dataset, number), Seen(vid, digest, who, f"{child.name} ({ref})"))
        bad = None
        if number > after:
            bad = f"{ref} was {dataset}@{number}, past the head {after} read after it"
        elif kind == "number" and ref != f"{dataset}@{number}":
            bad = f"{ref} resolved to {dataset}@{number}"
        elif kind == "head" and number < before:
            bad = f"the head went back from {before} to {number}"
        elif kind == "back" and not ref.endswith("~0") and number >= after:
            bad = f"{ref} was {dataset}@{number}, not before the head {after} read after it"
        if bad:
            self._violation("READ", f"{child.name} {ref} {number}", bad)

    def _read_error(
        self,
        child: Child,
        kind: str,
        ref: str,
        dataset: str,
        number: int | None,
        exc_type: str,
        text: str,
        before: int | None,
        at: float,
    ) -> None:
        if exc_type == "NotFoundError" and (before is None or kind in ("back", "tag")):
            return  # no version yet; latest~K before the first; a tag not set, or moved meanwhile
        if exc_type == "NotFoundError" and kind == "number" and DROPPED in text:
            self.totals.read_failures["dropped"] += 1
            self.suspect[dataset, int(ref.rsplit("@", 1)[1])] = f"{child.name}: {text[:100]}"
            return  # N <= the head has a record: a version's or a tombstone
        if exc_type == "IntegrityError" and number is not None:
            # Readers take no lease: a pull may fail, but only once GC has dropped the version.
            self.totals.read_failures["pull raced GC"] += 1
            self.suspect[dataset, number] = f"{child.name} pulling {ref}: {text[:200]}"
            self._event(f"{child.name} could not pull {ref} ({dataset}@{number}): {text[:120]}", at)
            return
        self._violation("READ", f"{child.name} {ref}", f"{child.name}: {ref} (head {before}): {exc_type}: {text}")

    def _gc_succeeded(self, started: float, by: str) -> None:
        if self.lock_left is not None:
            pid, expiry = self.lock_left
            self.lock_left = None
            self.totals.takeovers += started < expiry
            when = "before it would have expired" if started < expiry else "after it expired"
            self._event(f"{by} ran past the lock of killed pid {pid}, {when}")

    # ------------------------------------------------------------ the invariant

    def _show(self, ref: str) -> Version | NotFoundError:
        for attempt in range(3):
            try:
                return self.store.show(ref)
            except NotFoundError as exc:
                return exc
            except GitfreeError:  # a request that failed under load is not the store's answer
                if attempt == 2:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _pull_check(self, key: tuple[str, int], version: Version, telling: Telling) -> bool:
        """Pull ``version``; its bytes must be exactly ``telling``'s commit's. False when the pull failed
        because the version was dropped meanwhile (the test, like a reader, takes no lease)."""
        dataset, number = key
        ref = f"{dataset}@{number}"
        dest = self.root / "pulls" / uuid.uuid4().hex[:8]
        try:
            files = read_tree(self.store.pull(version, dest))
        except GitfreeError as exc:
            now = self._show(ref)
            if not isinstance(now, Version) and DROPPED in str(now):
                return False
            self._violation("PULL FAILED", ref, f"pulling {ref} failed ({exc}); now show says {now!r}")
            return False
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        who = who_wrote(files)
        self._saw(key, Seen(str(version.id), tree_digest(files), who, "the test"))
        if who != (telling.writer, telling.seq):
            self._violation(
                "NUMBER REUSED",
                ref,
                f"{ref} was told to writer{telling.writer} (commit {telling.seq}) but holds the bytes of {who} ",
            )
        return True

    def _check_told(self, key: tuple[str, int], telling: Telling, found: Version | NotFoundError) -> None:
        dataset, number = key
        ref = f"{dataset}@{number}"
        what = f"{ref} (told to writer{telling.writer} for commit {telling.seq}, id {telling.id})"
        if isinstance(found, Version):
            if str(found.id) != telling.id:
                self._violation(
                    "NUMBER REUSED", ref, f"{what} now holds id {found.id} (created {found.created_at:%H:%M:%S.%f}) "
                )
            elif self.verified.get(key) != found.md5 and self._pull_check(key, found, telling):
                self.verified[key] = found.md5
                self.totals.live_checked.add((self.run, dataset, number))
            return
        if DROPPED not in str(found):
            self._violation("NUMBER LOST", ref, f"{what}: show says: {found}")
            return
        self._tombstones(dataset, {number: telling.id}, f"{what} is said dropped")

    def _tombstones(self, dataset: str, ids: dict[int, str | None], what: str) -> None:
        """Each number's record must be a tombstone of the version of that id (of any, for ``None``)."""
        for number, record in _records(self.store, dataset, sorted(ids)).items():
            vid = ids[number]
            if not isinstance(record, Record) or not record.dropped or vid not in (None, record.id):
                ref = f"{dataset}@{number}"
                kind = "NUMBER REUSED" if isinstance(record, Record) else "NUMBER LOST"
                text = what.format(ref=ref, id=vid)
                self._violation(kind, ref, f"{text}, but its record is {record!r}")
                continue
            self.dropped[dataset, number] = record.id
            self.totals.dropped_checked.add((self.run, dataset, number))

    def check(self) -> None:
        """After every step: every number told is its writer's or dropped (see the module docstring)."""
        self.totals.steps += 1
        self._check_all()

    def _check_all(self) -> None:
        self._drain_all()
        live = [(k, t) for k, t in sorted(self.told.items()) if k not in self.dropped]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda item: self._show(f"{item[0][0]}@{item[0][1]}"), live))
        for (key, telling), found in zip(live, answers, strict=True):
            self._check_told(key, telling, found)
        # A number found dropped stays dropped: its record is the tombstone of the same version, for ever.
        by_dataset: dict[str, dict[int, str | None]] = {}
        for (dataset, number), vid in sorted(self.dropped.items()):
            by_dataset.setdefault(dataset, {})[number] = vid
        for dataset, ids in by_dataset.items():
            self._tombstones(dataset, ids, "{ref} was dropped (a tombstone of id {id})")
        for (dataset, number), why in sorted(self.suspect.items()):
            if (dataset, number) in self.dropped:
                continue
            ref = f"{dataset}@{number}"
            found = self._show(ref)
            if isinstance(found, Version) or DROPPED not in str(found):
                self._violation("PULL FAILED", ref, f"{why}; but {ref} is not dropped: {found!r}")
            else:
                self._tombstones(dataset, {number: None}, "{ref} is said dropped")
        for (dataset, name), number in sorted(self.tags.items()):
            found = self._show(f"{dataset}@{name}")
            if not isinstance(found, Version) or found.number != number:
                self._violation("TAG", f"{dataset}@{name}", f"moved to {number}, it now gives {found!r}")

    # ------------------------------------------------------------ settle: stop everything, check exactly

    def settle(self, keep_last: int) -> None:
        """Stop every process, run a GC in the test's process and check everything exactly."""
        self._stop([c for c in self.children.values() if c.exitcode is None])
        self._check_all()
        self.settles += 1
        self.totals.settles += 1
        # After a GC killed holding the lock, this one must take it over (same machine, pid gone).
        started = time.time()
        try:
            report = self.store.gc(keep_last=keep_last, grace=timedelta(0))
        except GitfreeError as exc:
            self._violation("GC", "the test's GC", f"the GC with nothing else running failed: {exc!r}")
        else:
            self.totals.gc_runs += 1
            self.totals.versions_dropped += len(report.versions_deleted)
            for ref in report.versions_deleted:
                self.dropped_by.setdefault(ref, []).append("the test's GC")
            self._gc_succeeded(started, "the test's GC")
            self._event(f"the test's GC (keep {keep_last}) dropped {report.versions_deleted}")
        self._check_all()
        fresh = Store(self.url, cache_dir=self.root / f"settle-cache-{self.settles}", **self.options)
        for dataset in self.store.datasets():
            self._settled(dataset, fresh)
        fsck = self.store.fsck(deep=True)
        if not fsck.ok:
            self._violation("FSCK", f"settle {self.settles}", f"fsck after settling: {fsck.problems}")
        if fsck.stale_leases:
            self._violation("FSCK", f"settle {self.settles} leases", f"{fsck.stale_leases} dead lease(s) left")
        self.totals.fsck_clean += fsck.ok and not fsck.stale_leases
        self._event(f"settled: {len(self.told)} told, {len(self.dropped)} dropped, fsck ok {fsck.ok}")

    def _settled(self, dataset: str, fresh: Store) -> None:
        """Exact checks with nothing running: numbers 1..N all taken, each a version or a tombstone; the live
        ones hold exactly one commit's bytes (the told one's), pulled through a fresh cache; latest~K for
        every K."""
        numbers = self.store.catalog.numbers(dataset)
        if numbers != list(range(1, len(numbers) + 1)):
            self._violation("NUMBER LOST", f"{dataset} numbers", f"{dataset}: the numbers taken are {numbers}")
        records = _records(self.store, dataset, numbers)
        live = [n for n, r in records.items() if isinstance(r, Record) and not r.dropped]
        shown_dropped = [n for n, r in records.items() if isinstance(r, Record) and r.dropped][-5:]
        log = [v.number for v in self.store.log(dataset)]
        if log != live[::-1]:
            self._violation("SETTLED", f"{dataset} log", f"log is {log}, the live records {live}")
        for number, record in records.items():
            key, ref = (dataset, number), f"{dataset}@{number}"
            if not isinstance(record, Record):
                self._violation("SETTLED", ref, f"the record of {ref}: {record!r}")
                continue
            telling = self.told.get(key)
            if telling is not None and telling.id != record.id:
                self._violation("NUMBER REUSED", ref, f"told id {telling.id}, the record's is {record.id}")
            if record.dropped:
                if number in shown_dropped:
                    found = self._show(ref)
                    if isinstance(found, Version) or DROPPED not in str(found):
                        self._violation("SETTLED", ref, f"its record is a tombstone, but show says {found!r}")
                if self.dropped.get(key, record.id) != record.id:
                    self._violation("NUMBER REUSED", ref, f"tombstone of {record.id}, was {self.dropped[key]}")
                self.dropped[key] = record.id
                continue
            version = self.store.show(ref)
            dest = self.root / "settle" / f"{dataset}-{number}"
            try:
                files = read_tree(fresh.pull(version, dest))  # every object from the store
            except GitfreeError as exc:
                self._violation("PULL FAILED", ref, f"with nothing running, pulling {ref} failed: {exc}")
                continue
            finally:
                shutil.rmtree(dest, ignore_errors=True)
            who = who_wrote(files)
            self._saw(key, Seen(record.id, tree_digest(files), who, "the settled store"))
            if telling is not None and who != (telling.writer, telling.seq):
                self._violation("NUMBER REUSED", ref, f"told for {telling}, it holds the bytes of {who}")
        for back in range(len(live) + 1):
            ref = f"{dataset}@latest~{back}"
            found = self._show(ref)
            got = found.number if isinstance(found, Version) else None
            want = live[-1 - back] if back < len(live) else None
            if got != want:
                self._violation("LATEST~K", ref, f"{ref} is {got} ({found!r}), the live versions are {live}")


def run_schedules(make_url: Callable[[str], tuple[str, dict[str, Any]]], tmp_path: Path, totals: Totals) -> None:
    """Hypothesis draws the setup and a schedule of STEPS actions per run. Nothing is raised inside: hypothesis
    would replay a failing example to report it, and real processes in real time never take the same turns
    twice. A run that finds a violation goes on to its last step (a number lost is one a later commit may be
    told again), no further run starts, and the test reports every violation by kind with that run's log."""
    writer_ids = iter(range(1, 1_000_000))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(setup=SETUP, schedule=st.lists(ACTIONS, min_size=STEPS, max_size=STEPS))
    def one_run(setup: tuple[int, list[int], float, int], schedule: list[Action]) -> None:
        if totals.violations:
            return
        root = tmp_path / f"run{totals.runs + 1}"
        url, options = make_url(root.name)
        run = Run(totals, url, options, root, writer_ids)
        try:
            run.begin(*setup)
            run.check()
            for action in schedule:
                run.step(action)
                run.check()
            if not run.violated:
                run._event("STEP settle(1), the last")
                run.settle(1)
        except Exception:
            run._violation("EXCEPTION", "the test", traceback.format_exc())
        finally:
            run.close()
            if run.violated and totals.failed_run is None:
                totals.failed_run = (url, run.log())
                for (kind, subject), text in totals.violations.items():
                    if re.fullmatch(r"[a-z]+@\d+", subject):
                        totals.violations[kind, subject] = text + run.history(subject)
            if os.environ.get("CGC_LOGS"):
                Path(os.environ["CGC_LOGS"], f"{root.name}-{uuid.uuid4().hex[:6]}.log").write_text("\n".join(run.log()))

    one_run()


@pytest.mark.timeout(1800 if FULL else 300)
@pytest.mark.parametrize("backend", ["s3", "file"])
def test_numbers_told_survive_concurrent_gc(
    backend: str, seaweedfs: SeaweedFS, tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inherited by every spawned process, and read by the test's own Store.
    monkeypatch.setenv("GITFREE_LEASE_TTL", str(LEASE_TTL))
    monkeypatch.setenv("GITFREE_CLOCK_SKEW", str(CLOCK_SKEW))
    monkeypatch.setenv("GITFREE_GC_WAIT", str(GC_WAIT))

    def make_url(name: str) -> tuple[str, dict[str, Any]]:
        if backend == "s3":
            return f"s3://{seaweedfs.bucket}/cgc-{uuid.uuid4().hex[:10]}-{name}", seaweedfs.store_options()
        return (tmp_path / name / "store").as_uri(), {}

    totals = Totals()
    started = time.monotonic()
    run_schedules(make_url, tmp_path, totals)
    elapsed = time.monotonic() - started
    if totals.violations:
        url, log = totals.failed_run or ("?", [])
        kinds = Counter(kind for kind, _ in totals.violations)
        shown = [
            f"[{kind}] {subject}: {text}"
            for k in kinds
            for (kind, subject), text in [i for i in totals.violations.items() if i[0][0] == k][:3]
        ]
        steps = "\n  ".join(log[-1500:])
        pytest.fail(
            f"invariant 1 violated on {url}: {dict(kinds)} (distinct subjects per kind)\n\n"
            + "\n\n".join(shown)
            + f"\n\nthat run's steps and events, in time order (seconds since it began):\n  {steps}",
            pytrace=False,
        )
    kills_w, kills_g, fails = totals.writer_kills, totals.gc_kills, totals.read_failures
    figures.add(
        PROMISE,
        f"{backend}: {totals.runs} runs, {totals.steps} steps, {elapsed:.0f} s; {totals.started['writer']} writer, "
        f"{totals.started['gc']} GC and {totals.started['reader']} reader processes; {totals.told} numbers told to "
        f"writers, {len(totals.told_twice)} told twice; each, after every step, its writer's bytes "
        f"({len(totals.live_checked)} pulled back) or a tombstone of that version ({len(totals.dropped_checked)} "
        f"dropped); readers pulled {totals.reads} versions (and found {fails['dropped']} numbers dropped, lost "
        f"{fails['pull raced GC']} pulls to GC), {len(totals.read_contents)} (number, bytes) read back, "
        f"{len(totals.two_contents)} numbers with two; {len(kills_w)} writers ({sum(kills_w)} in a commit) and "
        f"{len(kills_g)} GCs ({sum(kills_g)} holding the lock) killed -9, {totals.takeovers} dead GC locks taken "
        f"over before expiry; {totals.gc_runs} GC runs dropped {totals.versions_dropped} versions; "
        f"{totals.tags_moved} tag moves; {sum(totals.writer_errors.values())} commits refused (ConflictError); "
        f"exact check and fsck clean at {totals.fsck_clean}/{totals.settles} settles",
    )
    print(f"\nwriter errors: {dict(totals.writer_errors)}; gc errors: {dict(totals.gc_errors)}")
    print(f"read failures: {dict(totals.read_failures)}")
