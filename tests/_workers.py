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

    store = Store(url, cache_dir=cache, **options)
    calls = []

    def kill_on_first_batch(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    store.backend._client.meta.events.register("before-call.s3.DeleteObjects", kill_on_first_batch)  # type: ignore[attr-defined]
    store.gc(keep_last=1, grace=timedelta(0))


def commit_and_crash(url: str, options: dict[str, Any], cache: str, dataset: str, src: str, step: str) -> None:
    """Commit ``src`` and SIGKILL this process at ``step`` of the protocol:

    ``upload:N`` after N objects were uploaded; ``record`` just before the version record is
    sent; ``latest`` just after it was written (before latest.json); ``lease`` after
    everything but removing the lease.
    """
    import os
    import signal

    from fsspec.callbacks import DEFAULT_CALLBACK, Callback

    from gitfree import Store

    def die(**_: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    class KillAfter(Callback):
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
    events = store.backend._client.meta.events  # type: ignore[attr-defined]

    def before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", "")
        context["gitfree_key"] = key
        if step == "record" and "/versions/" in key:
            die()

    def after(context: dict[str, Any], **_: Any) -> None:
        if step == "latest" and "/versions/" in context.get("gitfree_key", ""):
            die()

    def before_delete(params: dict[str, Any], **_: Any) -> None:
        if step == "lease" and "/leases/" in "/" + params.get("Key", ""):
            die()

    events.register("before-parameter-build.s3.PutObject", before)
    events.register("after-call.s3.PutObject", after)
    events.register("before-parameter-build.s3.DeleteObject", before_delete)
    store.commit(dataset, src)


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
