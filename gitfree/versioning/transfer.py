"""Bulk transfer of content-addressed objects between the worker cache and a store, on obstore.

Measured on loopback SeaweedFS with 2,000 files of 1-64 KiB (docs/benchmarks.md): DVC's push
through s3fs/aiobotocore took 3.5-4.0 s whatever its ``jobs``, boto3 with 16-64 threads
4.2-4.7 s, s5cmd 1.5 s, and obstore (a Rust core, asyncio on top) with 64 requests in flight
1.0 s. Per-request Python overhead is what limits the others, so the bulk of the bytes goes
through obstore; the manifest records (a few small conditional writes) stay on boto3.

The layout is DVC's (``files/md5/ab/cdef…``), unchanged: a plain ``dvc pull`` reads what this
module writes. Objects up to 100 MiB are single PUTs (their ETag is their md5, which quick
``fsck`` checks); larger ones go in 8 MiB parts. Every download is hashed as it streams and
lands in the worker cache only if it matches. Bytes in flight are bounded, so memory stays
flat however large the data.

Progress is counted in bytes (:class:`_Bytes`): a transfer of one 500 MB file moves its bar as the
bytes go, not once at the end.

This module is the one place that sees obstore's exceptions.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .errors import ConfigError, GitfreeError
from .layout import CACHE_TMP, md5_of, object_key
from .localfs import owner_stamp, sweep_leftovers

if TYPE_CHECKING:
    from obstore.store import ObjectStore

__all__ = ["Transfer"]

T = TypeVar("T")

SINGLE_PUT_MAX = 100 * 1024 * 1024
"""Objects up to this size are one PUT (as s3fs does), so their ETag is their md5."""
PART = 8 * 1024 * 1024
PART_CONCURRENCY = 4
IN_FLIGHT = 112 * 1024 * 1024
"""At most this many bytes of object content held in memory at once (each object counts
its own size, capped at the part buffer of a multipart upload)."""
_CHUNK = 1024 * 1024
RANGED_MIN = 64 * 1024 * 1024
"""Objects larger than this are downloaded in parallel ranges (as s5cmd and the AWS CLI do)."""
RANGE_PART = 8 * 1024 * 1024
RANGE_WINDOW = 6


async def each(items: Iterable[str], jobs: int, work: Callable[[str], Awaitable[None]]) -> None:
    """``work(item)`` for every item, ``jobs`` at a time (a bounded set of workers, not one task per item)."""
    source = iter(items)

    async def worker() -> None:
        for item in source:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(jobs)))


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, also inside a running event loop."""
    _settle_at_exit()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wrap(make))
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _wrap(make)).result()


_SETTLE = 0.05
"""Seconds the interpreter gives obstore's threads at exit (see :func:`_settle_at_exit`)."""
_settling = False


def _settle_at_exit() -> None:
    """Let obstore's runtime threads leave Python before the interpreter finalises.

    obstore completes an awaited request from one of its tokio threads, through the event loop's
    ``call_soon_threadsafe``, whose write to the loop's self-pipe releases the GIL. The coroutine can see
    its answer and the program can end while that thread is still inside the write; when it then takes
    the GIL back from a finalising interpreter, Python 3.11 calls ``pthread_exit`` in a Rust thread, which
    aborts: a command that printed its answer exited with SIGABRT (134) in 3-30 % of runs. An ``atexit``
    handler runs before finalisation starts; sleeping in it releases the GIL, so those threads finish
    their few microseconds of Python and go back to Rust (regression test:
    tests/regression/test_process_aborts_at_exit.py)."""
    global _settling
    if not _settling:
        _settling = True
        atexit.register(time.sleep, _SETTLE)


async def _wrap(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


class _Budget:
    """A semaphore on bytes: large objects wait until enough of the budget is free."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self.cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def take(self, amount: int) -> Any:
        amount = min(amount, self.total)
        async with self.cond:
            await self.cond.wait_for(lambda: self.free >= amount)
            self.free -= amount
        try:
            yield
        finally:
            async with self.cond:
                self.free += amount
                self.cond.notify_all()


class _Bytes:
    """Progress of a transfer in bytes, on an fsspec callback.

    The callback's size is the bytes to move and its value the bytes moved. A callback with a ``unit``
    attribute (the CLI's progress bars) is told ``"bytes"``, so it shows sizes rather than counts.
    When the sizes are not all known up front (a download learns each object's size from its
    answer), the size is the bytes known plus, for each object not answered yet, the mean size of
    those answered: exact for one large file, and settling as the answers come.
    """

    def __init__(self, callback: Callback, objects: int, sizes: Iterable[int] = ()) -> None:
        self.callback = callback
        if hasattr(callback, "unit"):
            callback.unit = "bytes"
        self.objects = objects
        self.known = 0
        self.sized = 0
        for size in sizes:
            self.known += size
            self.sized += 1
        self._resize()

    def _resize(self) -> None:
        if self.sized == 0:
            self.callback.set_size(None if self.objects else 0)
        else:
            pending = max(0, self.objects - self.sized)
            self.callback.set_size(self.known + round(pending * self.known / self.sized))

    def sized_one(self, size: int) -> None:
        """One more object's size is known."""
        self.known += size
        self.sized += 1
        self._resize()

    def dropped_one(self) -> None:
        """An object that will not be transferred (missing from the store)."""
        self.objects -= 1
        self._resize()

    def moved(self, n: int) -> None:
        """``n`` more bytes went."""
        if n:
            self.callback.relative_update(n)


async def _streamed(result: Any, size: int, tmp: str, digest: Any, progress: _Bytes) -> None:
    """Write the answer ``result`` of a GET to ``tmp`` as it streams, hashing it and counting its bytes: an
    object up to ``_CHUNK`` in one piece, a larger one chunk by chunk."""
    if size <= _CHUNK:
        data = await result.bytes_async()
        digest.update(data)
        with open(tmp, "wb") as f:
            f.write(data)
        progress.moved(len(data))
        return
    with open(tmp, "wb") as f:
        async for chunk in result.stream(min_chunk_size=_CHUNK):
            view = memoryview(chunk)
            digest.update(view)
            f.write(view)
            progress.moved(len(view))


_NO_ANSWER = ("timed out", "timeout", "error sending request", "connection refused")
"""How obstore says a request got no answer (its errors carry no type for it)."""


class Transfer:
    """Moves objects between ``cache_dir/files/md5`` and the store's ``files/md5``.

    Args:
        store: an obstore store rooted at the gitfree store's root.
        cache_dir: the worker cache.
        jobs: requests in flight.
        where: the store URL, for error messages.
        upload_file: uploads one object file to its key where obstore cannot write to the service (the GCS
            emulator: :meth:`.backends.Backend.object_uploader`); ``None``: obstore's PUT.
    """

    def __init__(
        self,
        store: ObjectStore,
        cache_dir: Path,
        jobs: int,
        where: str,
        answer_within: float | None = None,
        upload_file: Callable[[str, Path], None] | None = None,
    ) -> None:
        self.store = store
        self.upload_file = upload_file
        self.cache_dir = cache_dir
        self.jobs = max(1, jobs)
        self.where = where
        self.answer_within = answer_within
        """The read timeout ``store`` was made with, if it is one (batched record reads): a server that does
        not answer within it is then a configuration problem, as for a single record read."""

    def cached(self, oid: str) -> Path:
        return self.cache_dir / object_key(oid)

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        from obstore import exceptions as ox

        try:
            yield
        except (ox.PermissionDeniedError, ox.UnauthenticatedError):
            raise ConfigError(
                f"the store {self.where} denied access while {what}: check the credentials and the bucket policy"
            ) from None
        except ox.BaseError as exc:
            text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            if self.answer_within is not None and any(m in str(exc).lower() for m in _NO_ANSWER):
                # As a single record read says it (backends): one line, exit 6, and worth a retry.
                unanswered = ConfigError(
                    f"the store {self.where} did not answer within {self.answer_within:g} s, or could not be "
                    f"reached, while {what}: is the endpoint up, and an S3 server? (GITFREE_ENDPOINT_URL; "
                    "GITFREE_READ_TIMEOUT raises the limit)"
                )
                unanswered.transient = True
                raise unanswered from None
            if "bucket" in text.lower() and "not" in text.lower() and "exist" in text.lower():
                raise ConfigError(
                    f"the bucket of {self.where} does not exist: create it, or fix the store URL"
                ) from None
            raise GitfreeError(f"{what} failed on {self.where}: {text}; retry") from None
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | PermissionError):
                raise
            raise GitfreeError(f"{what} failed on {self.where}: {exc.strerror or exc}; retry") from None

    # ------------------------------------------------------------------ presence

    def present(self, oids: Collection[str]) -> set[str]:
        """The oids that exist in the store (one HEAD each)."""
        import obstore
        from obstore.exceptions import NotFoundError

        found: set[str] = set()

        async def one(oid: str) -> None:
            with contextlib.suppress(NotFoundError, FileNotFoundError):  # obstore raises the built-in one
                await obstore.head_async(self.store, object_key(oid))
                found.add(oid)

        async def main() -> set[str]:
            await each(oids, self.jobs, one)
            return found

        with self._translate("checking which objects exist"):
            return run(main)

    # ------------------------------------------------------------------ small reads

    def read_many(self, keys: Collection[str]) -> dict[str, bytes | None]:
        """The content of each key (``None`` where it does not exist), many requests in flight:
        for records, which are small and many (``log`` of a long history)."""
        import obstore
        from obstore.exceptions import NotFoundError

        found: dict[str, bytes | None] = {}

        async def one(key: str) -> None:
            try:
                result = await obstore.get_async(self.store, key)
                found[key] = bytes(await result.bytes_async())
            except (NotFoundError, FileNotFoundError):
                found[key] = None

        async def main() -> dict[str, bytes | None]:
            await each(keys, self.jobs, one)
            return found

        with self._translate("reading records"):
            return run(main)

    # ------------------------------------------------------------------ upload

    def upload(self, oids: Collection[str], callback: Callback = DEFAULT_CALLBACK) -> None:
        """PUT each object from the worker cache. Returns when every PUT has succeeded (S3 makes a
        successful PUT durable); raises on the first failure."""
        import obstore

        sizes = {oid: self.cached(oid).stat().st_size for oid in oids}
        progress = _Bytes(callback, len(sizes), sizes.values())

        async def parts(path: Path) -> AsyncIterator[bytes]:
            """The file in ``PART`` pieces, each counted as it is handed to the multipart upload (which
            holds at most ``PART_CONCURRENCY`` of them)."""
            with open(path, "rb") as f:
                while piece := await asyncio.to_thread(f.read, PART):
                    progress.moved(len(piece))
                    yield piece

        async def main() -> None:
            budget = _Budget(IN_FLIGHT)

            async def one(oid: str) -> None:
                path = self.cached(oid)
                size = sizes[oid]
                if self.upload_file is not None:  # its own client, in a thread; it streams large files itself
                    async with budget.take(min(size, PART * PART_CONCURRENCY)):
                        await asyncio.to_thread(self.upload_file, object_key(oid), path)
                    progress.moved(size)
                elif size <= SINGLE_PUT_MAX:
                    async with budget.take(size):
                        data = await asyncio.to_thread(path.read_bytes) if size > _CHUNK else path.read_bytes()
                        await obstore.put_async(self.store, object_key(oid), data, use_multipart=False)
                    progress.moved(size)
                else:
                    async with budget.take(PART * PART_CONCURRENCY):
                        await obstore.put_async(
                            self.store,
                            object_key(oid),
                            parts(path),
                            use_multipart=True,
                            chunk_size=PART,
                            max_concurrency=PART_CONCURRENCY,
                        )

            await each(sorted(oids), self.jobs, one)

        with self._translate("uploading objects"):
            run(main)

    # ------------------------------------------------------------------ download

    async def _ranged(self, key: str, size: int, tmp: Path, digest: Any, progress: _Bytes) -> None:
        """Fetch ``key`` in ``RANGE_PART`` ranges, ``RANGE_WINDOW`` at a time, writing and hashing
        them in order as they complete (so memory holds at most the window)."""
        import obstore

        starts = list(range(0, size, RANGE_PART))
        pending: dict[int, asyncio.Future[Any]] = {}

        def launch(i: int) -> None:
            start = starts[i]
            pending[i] = asyncio.ensure_future(
                obstore.get_range_async(self.store, key, start=start, end=min(size, start + RANGE_PART))
            )

        for i in range(min(RANGE_WINDOW, len(starts))):
            launch(i)
        try:
            with open(tmp, "wb") as f:
                for i in range(len(starts)):
                    data = memoryview(await pending.pop(i))
                    if i + RANGE_WINDOW < len(starts):
                        launch(i + RANGE_WINDOW)
                    await asyncio.to_thread(digest.update, data)  # hashlib releases the GIL
                    f.write(data)
                    progress.moved(len(data))
        finally:
            for future in pending.values():
                future.cancel()

    def download(self, oids: Collection[str], callback: Callback = DEFAULT_CALLBACK) -> set[str]:
        """GET each object into the worker cache, hashing as it streams. Returns the oids that are
        missing from the store or did not match their hash (none of those lands in the cache)."""
        import obstore
        from obstore.exceptions import NotFoundError

        progress = _Bytes(callback, len(oids))

        failed: set[str] = set()

        # Per-object overhead decides the speed on many small files: plain string paths, the
        # 256 prefix folders made once, a small object taken in one piece.
        root = str(self.cache_dir)
        for prefix in {object_key(oid).rpartition("/")[0] for oid in oids}:
            os.makedirs(f"{root}/{prefix}", exist_ok=True)
        temporary = f"{root}/{CACHE_TMP}"
        os.makedirs(temporary, exist_ok=True)
        sweep_leftovers(Path(temporary).iterdir())  # those of killed downloads and reads by reference
        stamp = owner_stamp()

        async def one(oid: str) -> None:
            key = object_key(oid)
            target = f"{root}/{key}"
            tmp = f"{temporary}{oid}{stamp}.tmp"
            digest = hashlib.md5(usedforsecurity=False)
            try:
                result = await obstore.get_async(self.store, key)
            except (NotFoundError, FileNotFoundError):
                failed.add(oid)
                progress.dropped_one()
                return
            try:
                size = int(result.meta["size"])
                progress.sized_one(size)
                if size > RANGED_MIN:
                    del result  # a large object comes faster in parallel ranges
                    async with budget.take(RANGE_PART * RANGE_WINDOW):
                        await self._ranged(key, size, Path(tmp), digest, progress)
                else:
                    await _streamed(result, size, tmp, digest, progress)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            if digest.hexdigest() != md5_of(oid):
                os.unlink(tmp)
                failed.add(oid)
                return
            os.replace(tmp, target)

        budget = _Budget(IN_FLIGHT)

        async def main() -> set[str]:
            await each(sorted(oids), self.jobs, one)
            return failed

        with self._translate("downloading objects"):
            return run(main)
