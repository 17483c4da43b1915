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
