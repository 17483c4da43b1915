"""Functions run in child processes by the tests (importable by name under the spawn start method)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any


def commit_after_barrier(
    barrier: Barrier, results: Queue[Any], url: str, options: dict[str, Any], cache: str, dataset: str, src: str
) -> None:
    """Commit ``src`` once every writer is ready; report ``(src, number, id)`` or the error."""
    from gitfree import Store

    store = Store(url, cache_dir=cache, **options)
    barrier.wait(timeout=120)
    try:
        version = store.commit(dataset, src)
        results.put((src, version.number, str(version.id)))
    except Exception as exc:
        results.put((src, None, f"{type(exc).__name__}: {exc}"))


def pull_to(url: str, options: dict[str, Any], cache: str, ref: str, dest: str) -> str:
    from gitfree import Store

    return str(Store(url, cache_dir=cache, **options).pull(ref, Path(dest)))


def gc_until_killed(url: str, options: dict[str, Any], cache: str) -> None:
    """Run a GC that keeps the last version, and SIGKILL it just before its first batch of deletes
    (after it replaced the dropped version records by tombstones, before it removed their objects)."""
    import os
    import signal
    from datetime import timedelta

    from gitfree import Store
    from gitfree.testing import Faults
    from gitfree.versioning import layout

    store = Store(url, cache_dir=cache, **options)
    with Faults(store) as faults:
        faults.call("delete_many", layout.OBJECTS, lambda _: os.kill(os.getpid(), signal.SIGKILL), times=1)
        store.gc(keep_last=1, grace=timedelta(0))


def commit_and_crash(url: str, options: dict[str, Any], cache: str, dataset: str, src: str, step: str) -> None:
    """Commit ``src`` and SIGKILL this process at ``step`` of the protocol:

    ``upload:N`` after N objects were uploaded; ``record`` just before the version record is
    sent; ``latest`` just after it was written (before latest.json); ``lease`` after
    everything but removing the lease.
    """
    import os
    import re
    import signal

    from fsspec.callbacks import DEFAULT_CALLBACK, Callback

    from gitfree import Store
    from gitfree.testing import Faults
    from gitfree.versioning import layout

    def die(*_: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    class KillAfter(Callback):  # type: ignore[misc]  # fsspec is untyped
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        def call(self, *args: Any, **kwargs: Any) -> None:
            if self.value >= self.n:
                die()

    def progress(description: str, unit: str) -> Callback:
        if step.startswith("upload:") and description.startswith("Uploading"):
            return KillAfter(int(step.split(":")[1]))
        return DEFAULT_CALLBACK

    store = Store(url, cache_dir=cache, progress=progress, **options)
    versions = re.compile(r"^datasets/[^/]+/versions/")
    with Faults(store) as faults:
        if step == "record":  # just before the version record is sent
            faults.call("create", versions, die)
        elif step == "latest":  # just after it was written, before latest.json
            faults.call("create", versions, die, when="after")
        elif step == "lease":  # everything done but removing the lease
            faults.call("delete", layout.LEASES, die)
        store.commit(dataset, src)


def commit_by_reference_and_crash(url: str, options: dict[str, Any], cache: str, source: str, step: str) -> None:
    """Commit ``source`` by reference as ``images`` and SIGKILL this process at ``step``: ``table`` just after the
    reference table was created, ``record`` just before the version record is sent."""
    import os
    import re
    import signal

    from gitfree import Store
    from gitfree.testing import Faults
    from gitfree.versioning import layout

    def die(*_: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    store = Store(url, cache_dir=cache, **options)
    with Faults(store) as faults:
        if step == "table":
            faults.call("create", layout.REFERENCES, die, when="after")
        else:
            faults.call("create", re.compile(r"^datasets/[^/]+/versions/"), die)
        store.commit("images", source, by_reference=True)


def tag_after_barrier(
    barrier: Barrier, results: Queue[Any], url: str, options: dict[str, Any], ref: str, tag: str
) -> None:
    from gitfree import Store

    store = Store(url, **options)
    barrier.wait(timeout=120)
    try:
        store.tag(ref, tag)
        results.put((ref, "ok"))
    except Exception as exc:
        results.put((ref, type(exc).__name__))


# ---------------------------------------------------------------------------- GC running concurrently with writers
# and readers (tests/test_concurrent_gc.py). Each process reports through its own SimpleQueue (a small message
# is one atomic pipe write, so a SIGKILL never leaves half a message or a held lock for another process) and
# stops when the file ``stop`` exists (a multiprocessing Event could be left locked by a killed process).


def concurrent_content(writer: int, seq: int) -> dict[str, bytes]:
    """What ``writer`` commits as its ``seq``-th commit. ``who`` names both, so a read-back says whose bytes a
    version holds; the other files are shared with the writer's other commits, with every commit (and dataset),
    and with every third commit of any writer, so GC must keep objects a kept version shares with dropped ones."""
    slot = seq % 3
    return {
        "who": f"writer {writer} commit {seq}\n".encode(),
        "common.bin": b"in every version of every writer\n" * 64,
        f"own/w{writer}.bin": f"only writer {writer}\n".encode() * 32,
        f"slot/{slot}.bin": f"slot {slot}\n".encode() * 16,
    }


def tree_digest(files: dict[str, bytes]) -> str:
    """One hash of a whole tree: paths and bytes."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{len(path)}:{path}:{len(files[path])}:".encode())
        digest.update(files[path])
    return digest.hexdigest()


def who_wrote(files: dict[str, bytes]) -> tuple[int, int] | None:
    """``(writer, seq)`` when ``files`` are exactly what that writer committed then; else ``None``."""
    import re

    found = re.fullmatch(rb"writer (\d+) commit (\d+)\n", files.get("who", b""))
    if found is None:
        return None
    writer, seq = int(found[1]), int(found[2])
    return (writer, seq) if tree_digest(files) == tree_digest(concurrent_content(writer, seq)) else None


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def commit_loop(
    reports: Any, url: str, options: dict[str, Any], cache: str, work: str, dataset: str, writer: int, stop: str
) -> None:
    """Commit ``concurrent_content(writer, 1)``, ``(writer, 2)``... to ``dataset`` until ``stop`` exists.

    Reports ``("start", writer, seq, time)`` before each commit, then ``("told", writer, seq, dataset, number,
    id, created, time)`` with what the commit returned, or ``("error", writer, seq, dataset, type, message, time)``.
    """
    import os
    import shutil
    import time

    from gitfree import Store

    store = Store(url, cache_dir=cache, **options)
    seq = 0
    while not os.path.exists(stop):
        seq += 1
        src = Path(work) / f"w{writer}-{seq}"
        for rel, data in concurrent_content(writer, seq).items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)
        reports.put(("start", writer, seq, time.time()))
        try:
            version = store.commit(dataset, src)
        except Exception as exc:
            reports.put(("error", writer, seq, dataset, type(exc).__name__, str(exc)[:400], time.time()))
        else:
            created = getattr(version, "created", None)
            reports.put(("told", writer, seq, dataset, version.number, str(version.id), created, time.time()))
        shutil.rmtree(src, ignore_errors=True)


def gc_loop(
    reports: Any, url: str, options: dict[str, Any], cache: str, keeps: list[int], pause: float, stop: str
) -> None:
    """Run ``gc(keep_last=k, grace=0)`` with ``k`` cycling through ``keeps``, ``pause`` seconds apart, until ``stop``.

    Reports ``("gc-start", run, k, time)`` before each run, then ``("gc", run, k, started, ended,
    versions_deleted, objects_deleted, leases_removed)`` or ``("gc-error", run, k, started, ended, type, message)``.
    """
    import os
    import time
    from datetime import timedelta

    from gitfree import Store

    store = Store(url, cache_dir=cache, **options)
    run = 0
    while not os.path.exists(stop):
        keep = keeps[run % len(keeps)]
        run += 1
        started = time.time()
        reports.put(("gc-start", run, keep, started))
        try:
            report = store.gc(keep_last=keep, grace=timedelta(0))
        except Exception as exc:
            reports.put(("gc-error", run, keep, started, time.time(), type(exc).__name__, str(exc)[:400]))
        else:
            deleted = list(report.versions_deleted)
            reports.put(("gc", run, keep, started, time.time(), deleted, report.objects_deleted, report.leases_removed))
        time.sleep(pause)


def read_loop(
    reports: Any, url: str, options: dict[str, Any], cache: str, work: str, datasets: list[str], seed: int, stop: str
) -> None:
    """Resolve ``ds@N``, ``ds@latest~K``, ``ds@TAG`` and ``ds`` at random and pull what they name, until ``stop``.

    Reports ``("read", kind, ref, dataset, number, id, digest, who, head_before, head_after, time)`` for a pull
    that completed (``who``: ``(writer, seq)`` if the bytes are exactly that commit's, else ``None``), or
    ``("read-error", kind, ref, dataset, number, type, message, head_before, time)`` (``number``: the version
    resolved before the pull failed, else ``None``).
    """
    import os
    import random
    import shutil
    import time

    from gitfree import Store

    rng = random.Random(seed)
    store = Store(url, cache_dir=cache, **options)
    n = 0
    known: list[str] = []
    while not os.path.exists(stop):
        n += 1
        if n % 20 == 1 or not known:
            try:
                known = [d for d in store.datasets() if d in datasets]
            except Exception:
                known = []
        if not known:
            time.sleep(0.1)
            continue
        dataset = rng.choice(known)
        kind = rng.choice(["number", "number", "back", "tag", "head"])
        ref, number, before = dataset, None, None
        dest = Path(work) / f"r{n}"
        try:
            before = store.show(dataset).number
            if kind == "number":
                ref = f"{dataset}@{rng.randint(1, before)}"
            elif kind == "back":
                ref = f"{dataset}@latest~{rng.randint(0, 4)}"
            elif kind == "tag":
                ref = f"{dataset}@{rng.choice(['prod', 'dev'])}"
            version = store.show(ref)
            number = version.number
            files = _read_tree(store.pull(version, dest))
            after = store.show(dataset).number
            reports.put(
                (
                    "read",
                    kind,
                    ref,
                    dataset,
                    number,
                    str(version.id),
                    tree_digest(files),
                    who_wrote(files),
                    before,
                    after,
                    time.time(),
                )
            )
        except Exception as exc:
            reports.put(
                ("read-error", kind, ref, dataset, number, _public_error(exc), str(exc)[:400], before, time.time())
            )
        finally:
            shutil.rmtree(dest, ignore_errors=True)


def _public_error(exc: BaseException) -> str:
    """The name of the public gitfree error ``exc`` is (``ListingError`` is an ``IntegrityError``: a reader's
    pull raced by GC may raise either), else of its own class."""
    from gitfree.versioning import errors

    public = {"NotFoundError", "IntegrityError", "ConflictError", "InputError", "ConfigError", "UnsafePathError"}
    for cls in type(exc).__mro__:
        if cls.__module__ == errors.__name__ and cls.__name__ in public:
            return cls.__name__
    return type(exc).__name__


# ---------------------------------------------------------------------------- tag history (tests/test_tag_history.py)


def tag_moves_after_barrier(
    barrier: Barrier, results: Queue[Any], url: str, options: dict[str, Any], dataset: str, tag: str, mover: int, n: int
) -> None:
    """Once every mover is ready, move ``tag`` ``n`` times, each with the message ``m<mover>-<i>``: even moves
    unconditional (``move=True``), odd ones from the number last seen (``expect=``, compare-and-swap, so some
    lose). Reports one ``("ok", message, seq, number, previous, written)`` or ``("conflict", message, text)`` per
    call, then ``("done", mover)``."""
    from gitfree import ConflictError, Store

    store = Store(url, **options)
    numbers = [v.number for v in store.log(dataset)]
    barrier.wait(timeout=120)
    for i in range(n):
        message = f"m{mover}-{i}"
        target = f"{dataset}@{numbers[(mover + i) % len(numbers)]}"
        try:
            if i % 2:
                seen = store.show(f"{dataset}@{tag}").number
                made = store.tag(target, tag, expect=seen, message=message)
            else:
                made = store.tag(target, tag, move=True, message=message)
            results.put(("ok", message, made.seq, made.number, made.previous, made.written))
        except ConflictError as exc:
            results.put(("conflict", message, str(exc)))
    results.put(("done", mover))


def tag_move_killed_before_its_entry(url: str, options: dict[str, Any], ref: str, tag: str, seq: int) -> None:
    """Move ``tag`` to ``ref`` and SIGKILL this process right after the tag's record was swapped to ``seq``,
    before that write's history entry is written (the entry's create-only write is where it dies)."""
    import os
    import signal

    from gitfree import Store, parse_ref
    from gitfree.testing import Faults
    from gitfree.versioning import layout

    store = Store(url, **options)
    entry = layout.tag_event_key(parse_ref(ref).dataset, tag, seq)
    with Faults(store) as faults:
        faults.call("create", entry, lambda _: os.kill(os.getpid(), signal.SIGKILL))
        store.tag(ref, tag, move=True, message="killed before its entry")


def materialize_and_crash(url: str, options: dict[str, Any], cache: str, ref: str, copies: int) -> None:
    """Materialize ``ref`` and SIGKILL this process just after its ``copies``-th server-side copy returned
    (another copy may be in flight on the server then)."""
    import os
    import signal
    import threading

    from gitfree import Store
    from gitfree.versioning.backends import S3Backend

    done, lock = [0], threading.Lock()
    copy = S3Backend.copy_from

    def copy_then_die(self: S3Backend, *args: Any, **kwargs: Any) -> str:
        etag = copy(self, *args, **kwargs)
        with lock:
            done[0] += 1
            if done[0] >= copies:
                os.kill(os.getpid(), signal.SIGKILL)
        return etag

    S3Backend.copy_from = copy_then_die  # type: ignore[method-assign]
    Store(url, cache_dir=cache, **options).materialize(ref)


def commit_by_reference_paused(url: str, options: dict[str, Any], cache: str, source: str, ready: str, go: str) -> None:
    """Commit ``source`` by reference as ``images``, holding still between the reference table's create and the
    version record's (under its live lease): touch ``ready``, then wait until ``go`` exists."""
    import re
    import time

    from gitfree import Store
    from gitfree.testing import Faults

    def hold(*_: Any) -> None:
        Path(ready).touch()
        deadline = time.monotonic() + 120
        while not Path(go).exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    store = Store(url, cache_dir=cache, **options)
    with Faults(store) as faults:
        faults.call("create", re.compile(r"^datasets/[^/]+/versions/"), hold, times=1)
        store.commit("images", source, by_reference=True)
