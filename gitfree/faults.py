"""Fault injection for tests: a backend that fails, stalls, loses answers or drops conditions, and a clock.

``with Faults(store) as faults:`` puts a :class:`FaultyBackend` in front of the store's backend (for the
store, its catalog, its objects and its coordinator alike) and takes it away on exit. The wrapper does
what the real backend does, on S3 and on ``file://`` alike, except where a rule says otherwise. A rule
names operations of :class:`~gitfree.versioning.backends.Backend` (``get``, ``get_range``, ``create``, ``replace``,
``put``, ``delete``, ``delete_many``, ``exists``, ``size``, ``scan``, ``list``, ``md5``, and
``object_store``: each bulk transfer opening its obstore store) and keys, and does one thing to them:

- :meth:`Faults.fail`: raise an error instead of doing the operation (or, ``when="after"``, once done);
- :meth:`Faults.lose`: do the write, then raise ``OutcomeUnknown``, as a timeout after the server applied it;
- :meth:`Faults.delay`: sleep before (or after) the operation;
- :meth:`Faults.pause`: hold the calling thread until the test lets it go (:class:`Pause`), for interleavings
  such as "a commit paused between its upload and its record while a GC runs";
- :meth:`Faults.drop_condition`: perform a create or replace as a plain PUT, as a proxy stripping
  ``If-None-Match`` / ``If-Match`` would; the store must then refuse to write (its write probe goes
  through the wrapper, and the store proves itself writable again through it);
- :meth:`Faults.call`: call a function there (record the call, let another worker act, or ``os._exit``).

Example::

    with Faults(store) as faults:
        lost = faults.lose("create", re.compile(r"/versions/"))
        version = store.commit("ds", "data/")  # the record is written, its answer lost
        assert lost.fired and version.number == 1

A rule matches a call when the operation is one of its ``op`` (a name, several, or ``"*"``) and the key
(the prefix of ``scan`` and ``list``, any of the keys of ``delete_many``, ``""`` for ``object_store``)
matches ``key``: ``None`` for any, a string for a prefix, a compiled regular expression (``search``), or
a predicate. ``skip`` lets that many matching calls through first, then the rule acts on ``times`` of
them (``None``: every one; ``fail``, ``lose`` and ``pause`` act once unless told, the others every
time). Every rule matching a call acts, in the order the rules were added; :attr:`Rule.fired` and
:attr:`Faults.fired` say what they acted on. Give a key where you can: a store not yet proven writable
sends its first write probe (``probes/...``) through the same rules.

:class:`Clock` moves gitfree's wall clock (:func:`gitfree.versioning.models.utcnow`: record times, lease
expiries and the judgment of dead leases), so a lease or lock can look expired without waiting or
forging a record. Waits and timeouts use the monotonic clock and do not move with it.

Object transfers go through obstore, beside the backend, and so do the batched reads of many records
(``log``, an inventory for GC or fsck): the ``object_store`` operation can fail, delay, pause or call at
the start of each of them, but single objects within one cannot be singled out. Single reads of a
record (the head, ``name@N``, a tag, a lease) are ``get``.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .versioning.backends import Backend, KeyExists, KeyMissing, ObjectInfo, OutcomeUnknown, PreconditionFailed
from .versioning.errors import GitfreeError
from .versioning.models import Clock as ClockSource
from .versioning.models import set_clock

if TYPE_CHECKING:
    from obstore.store import ObjectStore

    from .versioning.store import Store

__all__ = [
    "OPERATIONS",
    "WRITES",
    "Call",
    "Clock",
    "Faults",
    "FaultyBackend",
    "InjectedFault",
    "KeyExists",
    "KeyMissing",
    "OutcomeUnknown",
    "Pause",
    "PreconditionFailed",
    "Rule",
]
# KeyExists, KeyMissing, PreconditionFailed and OutcomeUnknown are the backend's answers to a conditional
# write, a read of a missing key and a lost answer: what a rule's ``error`` scripts a store to say.

OPERATIONS = frozenset(
    {
        "get",
        "get_range",
        "create",
        "replace",
        "put",
        "delete",
        "delete_many",
        "exists",
        "size",
        "scan",
        "list",
        "md5",
        "object_store",
    }
)
"""The operations a rule can name."""
WRITES = frozenset({"create", "replace", "put", "delete", "delete_many"})
"""The operations whose answer can be lost (:meth:`Faults.lose`)."""
_CONDITIONAL = frozenset({"create", "replace"})

KeyFilter = str | re.Pattern[str] | Callable[[str], bool] | None
"""``None`` (any key), a prefix, a compiled regular expression (searched) or a predicate."""
ErrorSpec = BaseException | Callable[[str], BaseException]
"""An exception to raise, or a function of the key that makes one (an exception class does)."""
When = Literal["before", "after"]
T = TypeVar("T")
_ids = itertools.count(1)


class InjectedFault(GitfreeError):
    """What :meth:`Faults.fail` raises unless told otherwise: a failed request, worth retrying."""


@dataclass(frozen=True)
class Call:
    """One backend call a rule acted on."""

    action: str
    op: str
    key: str
    """The key the rule matched (for ``delete_many``, the first of its keys that did)."""
    keys: tuple[str, ...]
    data: bytes | None = field(default=None, repr=False)
    """What a ``create``, ``replace`` or ``put`` writes."""
    error: BaseException | None = None
    """For a rule acting ``after``: what the real operation raised, if it did."""


class Rule:
    """One fault: which calls (``op``, ``key``, ``skip``, ``times``) and what is done to them (``action``)."""

    def __init__(
        self,
        action: str,
        op: str | Collection[str],
        key: KeyFilter,
        *,
        times: int | None,
        skip: int,
        when: When | Literal["instead"],
        act: Callable[[Call], None],
    ) -> None:
        self.action = action
        self.ops = _operations(op)
        self.key = key
        self.times = times
        self.skip = skip
        self.when = when
        self.fired: list[str] = []
        """The keys of the calls it acted on, in order."""
        self._act = act
        self._seen = 0
        self._lock = threading.Lock()
        if when not in ("before", "after", "instead"):
            raise ValueError(f"when must be 'before' or 'after', not {when!r}")
        if (times is not None and times < 0) or skip < 0:
            raise ValueError("times and skip must not be negative")

    def __repr__(self) -> str:
        ops = ",".join(sorted(self.ops))
        return f"Rule({self.action} {ops} {self.key!r}, fired {len(self.fired)}x)"

    def matches(self, key: str) -> bool:
        if self.key is None:
            return True
        if isinstance(self.key, str):
            return key.startswith(self.key)
        if isinstance(self.key, re.Pattern):
            return self.key.search(key) is not None
        return bool(self.key(key))

    def claim(self, op: str, keys: Iterable[str]) -> str | None:
        """The key this call is acted on for (counted), or ``None`` if the rule lets it be."""
        if op not in self.ops:
            return None
        key = next((k for k in keys if self.matches(k)), None)
        if key is None:
            return None
        with self._lock:
            self._seen += 1
            if self._seen <= self.skip or (self.times is not None and len(self.fired) >= self.times):
                return None
            self.fired.append(key)
        return key

    def act(self, call: Call) -> None:
        self._act(call)


class Pause(Rule):
    """A rule that holds each call it acts on until :attr:`resume` is set.

    ``assert pause.reached.wait(60)`` waits until a call is held; ``pause.resume.set()`` lets it (and every
    later one) go on. A call held longer than ``timeout`` seconds fails with ``AssertionError``, and leaving
    the :class:`Faults` lets every held call go.
    """

    def __init__(
        self, op: str | Collection[str], key: KeyFilter, *, times: int | None, skip: int, when: When, timeout: float
    ) -> None:
        super().__init__("pause", op, key, times=times, skip=skip, when=when, act=self._hold)
        self.reached = threading.Event()
        self.resume = threading.Event()
        self.timeout = timeout

    def _hold(self, call: Call) -> None:
        self.reached.set()
        if not self.resume.wait(self.timeout):
            raise AssertionError(f"{call.op} {call.key} was paused for {self.timeout:g} s and never resumed")


def _operations(op: str | Collection[str]) -> frozenset[str]:
    ops = OPERATIONS if op == "*" else frozenset([op] if isinstance(op, str) else op)
    unknown = ops - OPERATIONS
    if unknown or not ops:
        raise ValueError(f"unknown operation(s) {sorted(unknown)}: use {sorted(OPERATIONS)} or '*'")
    return ops


def _error(spec: ErrorSpec | None, call: Call) -> BaseException:
    if spec is None:
        return InjectedFault(f"injected fault: {call.op} {call.key} failed; retry")
    if isinstance(spec, BaseException):
        return spec
    return spec(call.key)


class Faults:
    """Inject faults into one store's backend calls: ``with Faults(store) as faults: faults.lose(...)``.

    Args:
        store: a :class:`gitfree.Store`. Its backend is wrapped while the ``with`` block runs (also for
            leases and locks taken meanwhile, whose renewals go through the wrapper: after the block it
            has no rules left, and passes every call through).
        reprobe: make the store prove itself writable again, through the wrapper, before its next write
            (as a store reached through another endpoint would). :meth:`drop_condition` implies it.
    """

    def __init__(self, store: Store, *, reprobe: bool = False) -> None:
        self.store = store
        self.reprobe = reprobe
        self.id = next(_ids)
        self.rules: list[Rule] = []
        self.fired: list[Call] = []
        """Every call a rule acted on, in order (its action, operation and key)."""
        self.backend: FaultyBackend = FaultyBackend.around(store.backend, self)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ installing

    def __enter__(self) -> Faults:
        for part in self._parts():
            if part.backend is self.backend.inner:
                part.backend = self.backend
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()
        for part in self._parts():
            if part.backend is self.backend:
                part.backend = self.backend.inner

    def _parts(self) -> list[Any]:
        store = self.store
        return [store, store.catalog, store.objects, store.coordinator]

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        """Take one rule away (a held :class:`Pause` is let go)."""
        with self._lock:
            self.rules.remove(rule)
        if isinstance(rule, Pause):
            rule.resume.set()

    def clear(self) -> None:
        """Take every rule away, letting held calls go."""
        with self._lock:
            rules, self.rules = self.rules, []
        for rule in rules:
            if isinstance(rule, Pause):
                rule.resume.set()

    def active(self, when: str) -> list[Rule]:
        with self._lock:
            return [rule for rule in self.rules if rule.when == when]

    def record(self, call: Call) -> None:
        with self._lock:
            self.fired.append(call)

    # ------------------------------------------------------------------ the faults

    def fail(
        self,
        op: str | Collection[str],
        key: KeyFilter = None,
        *,
        error: ErrorSpec | None = None,
        times: int | None = 1,
        skip: int = 0,
        when: When = "before",
    ) -> Rule:
        """Raise ``error`` (default :class:`InjectedFault`) instead of doing the operation; with
        ``when="after"``, once it is done (the server applied it, the client never heard)."""
        return self._fail("fail", op, key, error, times=times, skip=skip, when=when)

    def _fail(
        self,
        action: str,
        op: str | Collection[str],
        key: KeyFilter,
        error: ErrorSpec | None,
        *,
        times: int | None,
        skip: int,
        when: When,
    ) -> Rule:
        def act(call: Call) -> None:
            raise _error(error, call) from call.error

        return self.add(Rule(action, op, key, times=times, skip=skip, when=when, act=act))

    def lose(self, op: str | Collection[str], key: KeyFilter = None, *, times: int | None = 1, skip: int = 0) -> Rule:
        """Do the write, then raise ``OutcomeUnknown``: its answer was lost (a timeout or a 5xx after the
        server applied it), so gitfree has to read the key back to know."""
        ops = _operations(op)
        if ops - WRITES:
            raise ValueError(f"only writes have answers to lose ({sorted(WRITES)}), not {sorted(ops - WRITES)}")
        return self._fail("lose", ops, key, OutcomeUnknown, times=times, skip=skip, when="after")

    def delay(
        self,
        op: str | Collection[str],
        key: KeyFilter = None,
        *,
        seconds: float,
        times: int | None = None,
        skip: int = 0,
        when: When = "before",
    ) -> Rule:
        """Sleep ``seconds`` before (or after) the operation."""
        return self.add(Rule("delay", op, key, times=times, skip=skip, when=when, act=lambda _: time.sleep(seconds)))

    def pause(
        self,
        op: str | Collection[str],
        key: KeyFilter = None,
        *,
        times: int | None = 1,
        skip: int = 0,
        when: When = "before",
        timeout: float = 60.0,
    ) -> Pause:
        """Hold the calling thread before (or after) the operation until ``pause.resume`` is set."""
        rule = Pause(op, key, times=times, skip=skip, when=when, timeout=timeout)
        self.add(rule)
        return rule

    def drop_condition(
        self,
        op: str | Collection[str] = ("create", "replace"),
        key: KeyFilter = None,
        *,
        times: int | None = None,
        skip: int = 0,
    ) -> Rule:
        """Perform a create (``If-None-Match: *``) or a replace (``If-Match``) as a plain PUT, as a proxy
        or an old server that drops the condition would. The store is made to prove itself writable again
        through the wrapper (:attr:`reprobe`), so its write probe meets the dropped condition."""
        ops = _operations(op)
        if ops - _CONDITIONAL:
            raise ValueError(f"only create and replace have conditions to drop, not {sorted(ops - _CONDITIONAL)}")
        self.reprobe = True
        return self.add(Rule("drop_condition", ops, key, times=times, skip=skip, when="instead", act=lambda _: None))

    def call(
        self,
        op: str | Collection[str],
        key: KeyFilter = None,
        fn: Callable[[Call], object] | None = None,
        *,
        times: int | None = None,
        skip: int = 0,
        when: When = "before",
    ) -> Rule:
        """Call ``fn(call)`` before (or after) the operation. What it raises is what the caller sees (the
        operation is then not done, before; or its answer replaced, after)."""
        if fn is None:
            raise TypeError("call() needs the function to call: call(op, key, fn)")
        wanted = fn

        def act(call: Call) -> None:
            wanted(call)

        return self.add(Rule("call", op, key, times=times, skip=skip, when=when, act=act))


@cache
def _faulty_class(backend: type[Backend]) -> type[FaultyBackend]:
    """A :class:`FaultyBackend` that is also an instance of ``backend``'s class, so code asking what kind of
    store it is (a local directory?) gets the same answer through the wrapper."""
    if issubclass(backend, FaultyBackend):
        return backend
    return type(f"Faulty{backend.__name__}", (FaultyBackend, backend), {})


class FaultyBackend(Backend):
    """The real backend (``inner``), with the rules of its :class:`Faults` applied to every call.

    Make one with :meth:`around`; attributes it does not define (``root``, ``endpoint``...) are the real
    backend's.
    """

    def __init__(self, inner: Backend, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.url = inner.url

    @classmethod
    def around(cls, inner: Backend, faults: Faults) -> FaultyBackend:
        """A wrapper of ``inner`` that is an instance of ``inner``'s class too."""
        made: FaultyBackend = _faulty_class(type(inner))(inner, faults)
        return made

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "faults"):  # not set yet (copying, unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"FaultyBackend({self.inner!r})"

    @property
    def endpoint(self) -> str | None:
        """The real endpoint; with :attr:`Faults.reprobe`, another one, so the store is proven writable
        again (through this wrapper) before its next write."""
        real: str | None = getattr(self.inner, "endpoint", None)
        if not self.faults.reprobe:
            return real
        return f"{real or self.url} (through gitfree.faults.Faults #{self.faults.id})"

    # ------------------------------------------------------------------ applying the rules

    def _run(
        self,
        op: str,
        keys: tuple[str, ...],
        perform: Callable[[], T],
        *,
        data: bytes | None = None,
        unconditional: Callable[[], T] | None = None,
    ) -> T:
        call = Call(action="", op=op, key=keys[0] if keys else "", keys=keys, data=data)
        self._apply("before", call)
        if unconditional is not None and self._apply("instead", call):
            perform = unconditional
        try:
            result = perform()
        except BaseException as exc:
            self._apply("after", replace(call, error=exc))
            raise
        self._apply("after", call)
        return result

    def _apply(self, when: str, call: Call) -> bool:
        """Let every rule of this phase that claims the call act on it, in order; whether any did."""
        acted = False
        for rule in self.faults.active(when):
            key = rule.claim(call.op, call.keys)
            if key is not None:
                fired = replace(call, action=rule.action, key=key)
                self.faults.record(fired)
                rule.act(fired)
                acted = True
        return acted

    def _listing(self, op: str, prefix: str, items: Callable[[], Iterator[T]]) -> Iterator[T]:
        """A listing, with the rules applied when it is first read (before) and once it has been read (after)."""
        call = Call(action="", op=op, key=prefix, keys=(prefix,))
        self._apply("before", call)
        try:
            yield from items()
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._apply("after", replace(call, error=exc))
            raise
        self._apply("after", call)

    def _put_etag(self, key: str, data: bytes) -> str:
        """An unconditional PUT, answering the ETag as the conditional write would have."""
        self.inner.put(key, data)
        return self.inner.get(key)[1]

    # ------------------------------------------------------------------ the backend

    def get(self, key: str) -> tuple[bytes, str]:
        return self._run("get", (key,), lambda: self.inner.get(key))

    def get_range(self, key: str, start: int, end: int) -> bytes:
        return self._run("get_range", (key,), lambda: self.inner.get_range(key, start, end))

    def create(self, key: str, data: bytes) -> str:
        perform = lambda: self.inner.create(key, data)  # noqa: E731
        return self._run("create", (key,), perform, data=data, unconditional=lambda: self._put_etag(key, data))

    def replace(self, key: str, data: bytes, etag: str) -> str:
        perform = lambda: self.inner.replace(key, data, etag)  # noqa: E731
        return self._run("replace", (key,), perform, data=data, unconditional=lambda: self._put_etag(key, data))

    def put(self, key: str, data: bytes) -> None:
        self._run("put", (key,), lambda: self.inner.put(key, data), data=data)

    def delete(self, key: str) -> None:
        self._run("delete", (key,), lambda: self.inner.delete(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        batch = tuple(keys)
        self._run("delete_many", batch, lambda: self.inner.delete_many(batch))

    def exists(self, key: str) -> bool:
        return self._run("exists", (key,), lambda: self.inner.exists(key))

    def size(self, key: str) -> int:
        return self._run("size", (key,), lambda: self.inner.size(key))

    def scan(self, prefix: str) -> Iterator[ObjectInfo]:
        return self._listing("scan", prefix, lambda: self.inner.scan(prefix))

    def list(self, prefix: str) -> Iterator[str]:
        return self._listing("list", prefix, lambda: self.inner.list(prefix))

    def md5(self, key: str) -> tuple[str, int]:
        return self._run("md5", (key,), lambda: self.inner.md5(key))

    def object_store(self, *, timeout: float | None = None) -> ObjectStore:
        return self._run("object_store", ("",), lambda: self.inner.object_store(timeout=timeout))

    def probe_conditional_writes(self) -> None:
        """The real backend's own checks, then the conditional-write probe through this wrapper: a store
        whose conditions are dropped here is refused, on S3 and on ``file://`` alike."""
        if type(self.inner).probe_conditional_writes is not Backend.probe_conditional_writes:
            self.inner.probe_conditional_writes()  # e.g. the file backend: the directory is writable
        Backend.probe_conditional_writes(self)


# ---------------------------------------------------------------------------- the clock


class Clock:
    """gitfree's wall clock under a test's control, process-wide while the ``with`` block runs.

    By default it is the system time plus an offset that moves only when told (:meth:`advance`); with
    ``frozen=True`` it stands still at the moment it was made, until moved::

        with Clock() as clock:
            clock.advance(minutes=20)   # every lease taken before now looks 20 minutes older

    Only :func:`gitfree.versioning.models.utcnow` follows it: record times, lease expiries and the
    judgment of dead leases and locks. Waits and timeouts (monotonic) and the server's times do not.
    """

    def __init__(self, *, frozen: bool = False) -> None:
        self.frozen = frozen
        self._start = datetime.now(UTC)
        self._offset = timedelta(0)
        self._lock = threading.Lock()
        self._previous: list[ClockSource | None] = []

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return (self._start if self.frozen else datetime.now(UTC)) + offset

    def advance(self, delta: timedelta | float = 0.0, **parts: float) -> datetime:
        """Move forward by ``delta`` (seconds, or a timedelta) plus ``timedelta(**parts)``; the new now."""
        step = (delta if isinstance(delta, timedelta) else timedelta(seconds=delta)) + timedelta(**parts)
        with self._lock:
            self._offset += step
        return self.now()

    def set(self, when: datetime) -> None:
        """Make now ``when`` (timezone-aware); a clock that is not frozen goes on from there."""
        with self._lock:
            base = self._start if self.frozen else datetime.now(UTC)
            self._offset = when - base

    def __enter__(self) -> Clock:
        self._previous.append(set_clock(self.now))
        return self

    def __exit__(self, *exc: object) -> None:
        set_clock(self._previous.pop())
