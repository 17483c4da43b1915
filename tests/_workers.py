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
    """Run a GC that keeps the last version, and SIGKILL it just before its second batch of deletes
    (after it removed the dropped version records, before it removed their objects)."""
    import os
    import signal
    from datetime import timedelta

    from gitfree import Store

    store = Store(url, cache_dir=cache, **options)
    calls = []

    def kill_on_second_batch(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    store.backend._client.meta.events.register("before-call.s3.DeleteObjects", kill_on_second_batch)  # type: ignore[attr-defined]
    store.gc(keep_last=1, grace=timedelta(0))
