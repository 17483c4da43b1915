"""Leases of commits in flight and the garbage collector's lock: created, kept alive, judged dead.

Writers and the garbage collector exclude each other with nothing but conditional
writes, in the order of Dekker's algorithm: a writer *first* creates its lease and
*then* looks for the GC lock; GC *first* creates its lock and *then* lists leases.
S3 is strongly consistent, so at least one of the two sees the other: either the
writer waits for GC to finish, or GC keeps what the writer's lease names
(docs/design.md, "Leases and the GC lock"). :class:`Coordinator` is all of it, for one store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from . import layout
from .backends import Backend, KeyExists, KeyMissing, OutcomeUnknown, PreconditionFailed
from .catalog import parse_lease
from .config import StoreSettings
from .errors import ConflictError
from .models import Lease, utcnow

__all__ = ["Coordinator", "Holder", "is_dead", "node_id", "read"]

_jitter = random.Random()  # noqa: S311 - jitter, not crypto
"""gitfree's own generator: the module's global one is the user's (a seeded training run must not see ours)."""

logger = logging.getLogger("gitfree")


@cache
def node_id() -> str | None:
    """This kernel boot and PID namespace: where a PID means the same process (Linux only)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot}/{namespace}"


def _process_gone(pid: int) -> bool:
    """No such process, or a zombie: it was killed and only waits for its parent to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


def is_dead(lease: Lease, skew: timedelta, now: datetime | None = None) -> bool:
    """A lease or lock whose holder cannot still be working.

    Expired by more than the allowed clock skew, or held by a process of this same
    machine (kernel boot and PID namespace) that no longer exists, as restic judges
    its stale locks.
    """
    if (now or utcnow()) > lease.expires_at + skew:
        return True
    here = node_id()
    return here is not None and lease.node == here and lease.pid != os.getpid() and _process_gone(lease.pid)


class Holder:
    """Holds a lease or lock record at ``key`` and renews it every ``ttl / 3`` while work goes on.

    Renewal swaps the record with ``If-Match``, so a holder notices when someone judged
    it dead and took or removed its record: :meth:`valid` turns false and the holder
    must not act on what the record protected.
    """

    def __init__(self, backend: Backend, key: str, lease: Lease, ttl: timedelta) -> None:
        self.backend = backend
        self.key = key
        self.lease = lease
        self.ttl = ttl
        self._etag: str | None = None
        self._lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def new(cls, backend: Backend, ttl: timedelta, *, key: str | None = None, **fields: Any) -> Holder:
        """A new lease (at ``leases/<id>.json`` unless ``key`` is given), not yet written."""
        now = utcnow()
        lease_id = uuid.uuid4()
        key = key or layout.lease_key(str(lease_id))
        lease = Lease(
            id=lease_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            node=node_id(),
            created_at=now,
            expires_at=now + ttl,
            **fields,
        )
        return cls(backend, key, lease, ttl)

    def create(self) -> None:
        """Create the record (``If-None-Match``); raise ``KeyExists`` when it is there already.

        A lost answer is settled by reading the key back: our record there is ours (renewed and released
        as if the answer had come); nothing there is tried again once; someone else's is ``KeyExists``.
        """
        data = self.lease.model_dump_json().encode()
        for attempt in range(2):
            try:
                self._etag = self.backend.create(self.key, data)
                break
            except OutcomeUnknown:
                found = read(self.backend, self.key)
                if found is not None and found[0].id == self.lease.id:
                    self._etag = found[1]
                    break
                if found is not None:
                    raise KeyExists(self.key) from None
                if attempt:
                    raise
        self._start()

    def take_over(self, etag: str) -> None:
        """Replace a dead holder's record that had ``etag``; raise ``PreconditionFailed`` if it changed."""
        self._etag = self.backend.replace(self.key, self.lease.model_dump_json().encode(), etag)
        self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"gitfree-{self.key}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            self.renew()

    def renew(self) -> bool:
        """Push the expiry forward now; false when the record was lost."""
        with self._lock:
            if self._lost or self._etag is None:
                return False
            if utcnow() >= self.lease.expires_at:
                # Lapsed: someone may have judged it dead and acted on that. Renewing now would
                # hide it; the holder must start over instead.
                logger.warning("%s lapsed before it could be renewed", self.key)
                self._lost = True
                return False
            renewed = self.lease.model_copy(update={"expires_at": utcnow() + self.ttl})
            try:
                self._etag = self.backend.replace(self.key, renewed.model_dump_json().encode(), self._etag)
            except PreconditionFailed:
                logger.warning("%s was taken over or removed by someone who judged it dead", self.key)
                self._lost = True
                return False
            except Exception:  # a missed heartbeat shortens the lease; valid() tells the holder
                logger.warning("could not renew %s", self.key, exc_info=True)
                return False
            self.lease = renewed
            return True

    def valid(self, margin: timedelta) -> bool:
        """Still ours, and at least ``margin`` before expiry by our clock."""
        return not self._lost and utcnow() + margin < self.lease.expires_at

    def release(self) -> None:
        """Stop renewing and remove the record (if it is still ours)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            if self._lost or self._etag is None:
                return
            try:
                _, etag = self.backend.get(self.key)
                if etag == self._etag:
                    self.backend.delete(self.key)
            except KeyMissing:
                pass
            except Exception:
                logger.warning("could not remove %s; it expires by itself", self.key, exc_info=True)
            self._etag = None


def read(backend: Backend, key: str) -> tuple[Lease, str] | None:
    """The lease or lock at ``key`` and its etag; ``None`` if there is none.

    A record that does not parse is returned as an already expired lease (its writer
    was not gitfree, or it was cut short), so that it blocks nobody for ever.
    """
    try:
        raw, etag = backend.get(key)
    except KeyMissing:
        return None
    lease = parse_lease(raw, key, backend.url)  # records are parsed by the catalog (a newer format: IntegrityError)
    if lease is not None:
        return lease, etag
    logger.warning("%s is not a valid lease record; treating it as expired", key)
    epoch = datetime.fromtimestamp(0).astimezone()
    return Lease(id=uuid.uuid4(), host="?", pid=0, created_at=epoch, expires_at=epoch), etag


class Coordinator:
    """Everything commits and garbage collection do to stay out of each other's way, for one store.

    Args:
        backend: the store's backend.
        ttl: how long a lease or lock lives unless renewed (renewed every ``ttl / 3``).
        skew: the clock difference tolerated between workers before a lease is judged expired.
        wait: how long a commit or tag waits for a garbage collection, and GC for uploads in flight (s).
    """

    def __init__(self, backend: Backend, *, ttl: timedelta, skew: timedelta, wait: float) -> None:
        self.backend = backend
        self.url = backend.url
        self.ttl = ttl
        self.skew = skew
        self.wait = wait

    @classmethod
    def of(cls, backend: Backend, settings: StoreSettings) -> Coordinator:
        return cls(
            backend,
            ttl=timedelta(seconds=settings.lease_ttl),
            skew=timedelta(seconds=settings.clock_skew),
            wait=settings.gc_wait,
        )

    def dead(self, lease: Lease) -> bool:
        return is_dead(lease, self.skew)

    # ------------------------------------------------------------------ the writers' side

    def gc_lock(self) -> Lease | None:
        """The GC lock, if a garbage collection holds it and is alive."""
        found = read(self.backend, layout.GC_LOCK)
        if found is None or self.dead(found[0]):
            return None
        return found[0]

    def await_gc(self, deadline: float, what: str) -> bool:
        """Wait while garbage collection runs; true if it did (so the caller re-checks what it relied on)."""
        waited = False
        while (lock := self.gc_lock()) is not None:
            if time.monotonic() > deadline:
                raise ConflictError(
                    f"{what} waited {self.wait:.0f}s for garbage collection on {self.url} to finish "
                    f"(the run now holding it started {lock.created_at:%Y-%m-%d %H:%M:%S} UTC on {lock.host}, pid "
                    f"{lock.pid}). Retry when it has finished, or raise GITFREE_GC_WAIT"
                )
            if not waited:
                logger.info("garbage collection is running on %s (on %s); %s waits for it", self.url, lock.host, what)
            waited = True
            # Look often (a GET of a small key): a commit must not miss the gap between two GC runs.
            time.sleep(_jitter.uniform(0.5, 1.5) * min(0.25, max(0.05, self.wait / 20)))
        return waited

    @contextlib.contextmanager
    def commit_lease(self, dataset: str, pointer: str) -> Iterator[Holder]:
        """A lease naming what a commit will reference, renewed while it runs, released at the end.

        The lease is written *before* looking for the GC lock: either a GC that starts later sees the
        lease and keeps ``pointer``, or we see its lock, withdraw the lease (so GC does not wait for
        us) and wait for it to finish.
        """
        deadline = time.monotonic() + self.wait
        while True:
            holder = Holder.new(self.backend, self.ttl, dataset=dataset, pointer=pointer)
            holder.create()
            try:
                free = self.gc_lock() is None
            except BaseException:  # a lease nobody will use must not hold off every GC for the process's life
                holder.release()
                raise
            if free:
                break
            holder.release()
            self.await_gc(deadline, f"a commit to {dataset!r}")
        try:
            yield holder
        finally:
            holder.release()

    # ------------------------------------------------------------------ the collector's side

    def take_gc_lock(self) -> Holder:
        """Take ``gc/lock.json`` (create-only; a dead holder's lock is taken over with ``If-Match``),
        renewed until released."""
        holder = Holder.new(self.backend, self.ttl, key=layout.GC_LOCK, kind="gc")
        try:
            holder.create()
            return holder
        except (KeyExists, OutcomeUnknown):
            pass
        found = read(self.backend, layout.GC_LOCK)
        if found is None:  # released meanwhile
            try:
                holder.create()
            except KeyExists:
                raise ConflictError(
                    "another garbage collection took the lock at the same moment; wait for it"
                ) from None
            return holder
        current, etag = found
        if current.id == holder.lease.id:  # our create landed; only its answer was lost
            holder.take_over(etag)
            return holder
        if not self.dead(current):
            raise ConflictError(
                f"another garbage collection holds {self.url} (on {current.host}, pid {current.pid}, since "
                f"{current.created_at:%Y-%m-%d %H:%M:%S} UTC, renewed until {current.expires_at:%H:%M:%S}); "
                "wait for it to finish. A crashed one stops blocking when its lock expires."
            )
        logger.warning("taking over the lock of a garbage collection that died (%s, pid %d)", current.host, current.pid)
        try:
            holder.take_over(etag)
        except PreconditionFailed:
            raise ConflictError("another garbage collection took the lock at the same moment; wait for it") from None
        return holder

    def scan(self) -> tuple[list[Lease], list[str]]:
        """The live commit leases, and the keys of dead leases (and of records that are not commit leases)."""
        live: list[Lease] = []
        dead: list[str] = []
        for key in self.backend.list(layout.LEASES):
            found = read(self.backend, key)
            if found is None:
                continue
            lease = found[0]
            if lease.kind != "commit" or self.dead(lease):
                dead.append(key)
            else:
                live.append(lease)
        return live, dead
