"""The records gitfree writes to a store, and the values its API returns.

Records we own are frozen and forbid unknown fields: a record that does not
parse is reported as an :class:`~gitfree.versioning.errors.IntegrityError`,
never guessed at.
"""

from __future__ import annotations

import getpass
import math
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_validator

__all__ = [
    "Author",
    "Diff",
    "DiffEntry",
    "Dropped",
    "FileEntry",
    "FsckReport",
    "GcReport",
    "InputRef",
    "Lease",
    "Output",
    "Pointer",
    "Problem",
    "RunNote",
    "StoreMarker",
    "Tag",
    "Uploads",
    "Version",
]

FORMAT: Literal[1] = 1

Metric = int | float
"""A metric's value. In this order: pydantic keeps an int an int (JSON ``120000``) and a float a float
(``120000.0``); neither is converted to the other."""
METRIC_INT_MAX = 2**63 - 1
"""Integer metrics are 64-bit: what every reader of the JSON (and DVC's metrics) holds exactly."""


Clock = Callable[[], datetime]
"""A source of the current time (timezone-aware, UTC)."""

_clock: Clock | None = None
"""What :func:`utcnow` reads: ``None`` for the system clock."""


def utcnow() -> datetime:
    """Now, in UTC: gitfree's one wall clock (record times, lease expiries and their judgment).

    The system clock, unless :func:`set_clock` installed another (``gitfree.testing.Clock``)."""
    clock = _clock
    return datetime.now(UTC) if clock is None else clock()


def set_clock(clock: Clock | None) -> Clock | None:
    """Make :func:`utcnow` read ``clock`` (``None``: the system clock again); return the one it replaces.

    A seam for tests, process-wide: ``gitfree.testing.Clock`` uses it to make a lease look expired
    without waiting. Waits and timeouts use the monotonic clock and are not affected."""
    global _clock
    previous, _clock = _clock, clock
    return previous


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Author(_Record):
    """Who made a version: the user and host, and the orchestrator run when there is one."""

    user: str | None = None
    host: str | None = None
    orchestrator: str | None = None
    """``prefect`` or ``airflow`` when a task of that orchestrator made the version."""
    pipeline: str | None = None
    """Flow name (Prefect) or DAG id (Airflow)."""
    run_id: str | None = None
    """Flow run id or DAG run id."""
    task_id: str | None = None
    """Task run id or task id."""

    @classmethod
    def current(cls, **orchestration: str | None) -> Author:
        """The author of a commit made by this process."""
        try:
            user: str | None = getpass.getuser()
        except (KeyError, OSError):
            user = os.environ.get("USER")
        return cls(user=user, host=socket.gethostname(), **orchestration)


class InputRef(_Record):
    """A version this one was made from (lineage)."""

    dataset: str
    number: int = Field(ge=1)
    store: str | None = None
    """URL of the store holding the input, when it is not the same store."""

    def __str__(self) -> str:
        return f"{self.dataset}@{self.number}"


class Output(_Record):
    """One ``outs`` entry of a ``.dvc`` file, as DVC writes it."""

    md5: str = Field(pattern=r"^[0-9a-f]{32}(\.dir)?$")
    size: int = Field(ge=0)
    nfiles: int | None = Field(default=None, ge=0)
    hash: Literal["md5"] = "md5"
    path: str
    """The name of the committed file or directory: one path segment (a pull writes it inside its destination)."""

    @field_validator("path")
    @classmethod
    def _one_safe_segment(cls, path: str) -> str:
        if not path or path in (".", "..") or any(c in path for c in "/\\\0"):
            raise ValueError(f"the output path {path[:60]!r} is not a plain file or directory name")
        return path

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


class Pointer(_Record):
    """The content of the ``.dvc`` file of a version: what DVC needs to ``dvc pull`` it."""

    outs: list[Output] = Field(min_length=1, max_length=1)

    @property
    def out(self) -> Output:
        return self.outs[0]


class Version(_Record):
    """An immutable, committed version of a dataset (format 1)."""

    format: Literal[1] = FORMAT
    dataset: str
    number: int = Field(ge=1)
    id: uuid.UUID
    """Unique per commit attempt: how a writer recognises its own record after a lost response."""
    parent: int | None = None
    created_at: AwareDatetime
    message: str = ""
    author: Author = Field(default_factory=Author)
    pointer: Pointer
    size: int = Field(ge=0)
    nfiles: int = Field(ge=0)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    metrics: dict[str, Metric] = Field(default_factory=dict)
    """Name → number. An integer stays an integer (``rows=120000`` is recorded, read and printed as
    ``120000``), a float a float; NaN and infinities are refused."""
    inputs: list[InputRef] = Field(default_factory=list)
    created: bool | None = Field(default=None, exclude=True)
    """Not part of the record. On what :meth:`Store.commit` returns: true when that call created this
    version, false when the store already held the data (and the inputs) so nothing was written.
    ``None`` on a version read from the store."""

    @field_validator("metrics")
    @classmethod
    def _finite(cls, metrics: dict[str, Metric]) -> dict[str, Metric]:
        for name, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"the metric {name!r} is {value}; metrics must be finite numbers (record a diverged "
                    "run's loss in metadata instead)"
                )
            if isinstance(value, int) and not -METRIC_INT_MAX <= value <= METRIC_INT_MAX:
                raise ValueError(
                    f"the metric {name!r} is an integer of {len(str(abs(value)))} digits; integer metrics must fit "
                    "in 64 bits (record larger numbers in metadata, or as a float)"
                )
        return metrics

    def __eq__(self, other: object) -> bool:
        # The record is the version: ``created`` says what one call did, not what the version is.
        if not isinstance(other, Version):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash((self.dataset, self.number, self.id))

    @property
    def ref(self) -> str:
        """The exact ref of this version, e.g. ``images@3``."""
        return f"{self.dataset}@{self.number}"

    @property
    def md5(self) -> str:
        """Content hash of the data (DVC's; directories end in ``.dir``)."""
        return self.pointer.out.md5

    @property
    def is_dir(self) -> bool:
        return self.pointer.out.is_dir

    def __str__(self) -> str:
        return self.ref


class Dropped(_Record):
    """What garbage collection leaves at ``versions/<n>.json`` in place of a version it dropped.

    The key stays occupied, so no writer can ever create that number again (a ref such as
    ``images@5`` means one set of bytes forever, or nothing); readers are told when it went.
    ``md5`` is the output the version referenced, so that a garbage collection that dies before
    its sweep finishes knows, when run again, that those objects were gitfree's.
    """

    format: Literal[1] = FORMAT
    dropped: Literal[True] = True
    dataset: str
    number: int = Field(ge=1)
    id: uuid.UUID
    """The id of the version that was dropped."""
    created_at: AwareDatetime
    """When the dropped version was created."""
    md5: str = Field(pattern=r"^[0-9a-f]{32}(\.dir)?$")
    dropped_at: AwareDatetime
    dropped_by: Author = Field(default_factory=Author)

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"


class Uploads(_Record):
    """``uploads/<lease id>.json``: the objects a commit is about to upload, written before it uploads them.

    It is how garbage collection knows that an object no version references was put there by
    gitfree (a commit that crashed or gave up) and not by someone else sharing the bucket (a DVC
    project pushing to the same remote): only objects that a version record, a tombstone or an
    upload journal names are ever deleted without ``delete_foreign``.
    """

    format: Literal[1] = FORMAT
    lease: uuid.UUID
    dataset: str
    created_at: AwareDatetime
    objects: list[str]


class RunNote(_Record):
    """``runs/<run>/<dataset>@<n>.json``: the version ``dataset@number`` of this store was used (pulled) in
    the orchestrator run ``run`` (docs/design.md, "Lineage inside orchestrator runs").

    Written create-only by the pull, in the store the version came from; a commit in the same run reads
    the notes of its store and records those versions as its inputs. A note is never needed for safety:
    garbage collection removes it once it is older than ``gc.RUN_NOTES_KEPT``.
    """

    format: Literal[1] = FORMAT
    run: str = Field(min_length=1)
    """The run, whole (``prefect:<flow run id>``, ``airflow:<dag id>:<run id>``): its key holds only a slug of it."""
    dataset: str
    number: int = Field(ge=1)
    version_id: uuid.UUID
    """The id of the version pulled: a commit adds it as an input only if the record at ``number`` is still
    that version (or its tombstone), never another one made at the same number by a store made anew."""
    store: str
    """The URL of the store it was pulled from (the one holding the note)."""
    created_at: AwareDatetime
    """When it was first noted (the worker's clock); a second pull of it in the run writes nothing."""
    task: str | None = None
    """The task that pulled it (Prefect task run id, Airflow ``task_id`` or ``task_id[map index]``)."""
    host: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"


class Tag(_Record):
    """A name pointing at one version of one dataset."""

    format: Literal[1] = FORMAT
    dataset: str
    tag: str
    number: int = Field(ge=1)
    created_at: AwareDatetime
    author: Author = Field(default_factory=Author)

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.tag}"


class Latest(_Record):
    """``latest.json``: a hint to the newest version, with its record so a reader needs one request."""

    format: Literal[1] = FORMAT
    number: int = Field(ge=1)
    version: Version


class Lease(_Record):
    """A commit in flight (``leases/<id>.json``) or garbage collection's lock (``gc/lock.json``).

    A commit's lease names the object it is about to reference (``pointer``: the ``.dir``
    listing or the single file), so that a concurrent garbage collection keeps it. Both
    are renewed while their holder works; one whose ``expires_at`` (plus the allowed clock
    skew) has passed, or whose process is gone from this same machine, is dead.
    """

    format: Literal[1] = FORMAT
    id: uuid.UUID
    kind: Literal["commit", "gc"] = "commit"
    dataset: str | None = None
    pointer: str | None = None
    """md5 of the output the commit will reference (``….dir`` for a directory)."""
    host: str
    pid: int
    node: str | None = None
    """Identifies this kernel and PID namespace, so that a lease's process can be checked for life."""
    created_at: AwareDatetime
    expires_at: AwareDatetime


class StoreMarker(_Record):
    """``gitfree.json`` at the root of a store."""

    model_config = ConfigDict(frozen=True, extra="allow")
    format: int
    created_at: AwareDatetime | None = None
    created_by: str | None = None


class FileEntry(BaseModel):
    """One file of a version: its path inside the version, hash and size (when known)."""

    model_config = ConfigDict(frozen=True)
    path: str
    md5: str
    size: int | None = None


class DiffEntry(BaseModel):
    """One path that differs between two versions."""

    model_config = ConfigDict(frozen=True)
    path: str
    status: Literal["added", "removed", "modified"]
    old_size: int | None = None
    new_size: int | None = None
    old_md5: str | None = None
    new_md5: str | None = None


class Diff(BaseModel):
    """What changed from version ``old`` to version ``new``, path by path (sorted)."""

    model_config = ConfigDict(frozen=True)
    old: str
    new: str
    entries: list[DiffEntry]

    @field_validator("entries")
    @classmethod
    def _sorted(cls, entries: list[DiffEntry]) -> list[DiffEntry]:
        return sorted(entries, key=lambda e: e.path)

    def _with(self, status: str) -> list[DiffEntry]:
        return [e for e in self.entries if e.status == status]

    @property
    def added(self) -> list[DiffEntry]:
        return self._with("added")

    @property
    def removed(self) -> list[DiffEntry]:
        return self._with("removed")

    @property
    def modified(self) -> list[DiffEntry]:
        return self._with("modified")

    def __bool__(self) -> bool:
        return bool(self.entries)


class GcReport(BaseModel):
    """What a garbage collection removed (or, in a dry run, would remove)."""

    model_config = ConfigDict(frozen=True)
    dry_run: bool
    versions_kept: int
    versions_deleted: list[str]
    """Refs of the version records removed, e.g. ``images@3``."""
    objects_kept: int
    objects_deleted: int
    bytes_deleted: int
    objects_too_young: int
    """Unreferenced objects left alone because they are younger than the grace period."""
    leases_live: int
    leases_removed: int
    leases_stale: int = 0
    """Leases of commits found dead (expired past the allowed clock skew, or their process gone), in a dry
    run as in a real one: a real run removes them (``leases_removed``), a dry run only counts them."""
    deleted: list[str] = Field(default_factory=list)
    """Keys of the objects removed (or to remove)."""
    foreign_objects: int = 0
    """Objects in DVC's layout that no gitfree record or upload journal names (another tool's, e.g. a DVC
    project pushing to the same remote): never deleted unless ``delete_foreign``."""
    foreign_bytes: int = 0
    foreign_deleted: bool = False
    """Whether the foreign objects (older than the grace period) were deleted (or, dry run, would be)."""
    unreadable_records: list[str] = Field(default_factory=list)
    """Keys of version records that could not be read. Their datasets drop nothing; the objects they may
    name are kept (see :meth:`Store.gc`)."""
    sweep_skipped: str | None = None
    """Why no object was deleted this time, when a record gave no clue of what it references."""
    run_notes_removed: int = 0
    """Run notes (``runs/``: the versions orchestrator runs pulled) older than ``RUN_NOTES_KEPT`` (30 days),
    removed (a dry run: that would be). They are lineage hints of finished runs, never needed for safety."""


class Problem(BaseModel):
    """One thing ``fsck`` found wrong, with the version it breaks and whether ``repair`` fixed it."""

    model_config = ConfigDict(frozen=True)
    kind: Literal[
        "bad_record", "missing_listing", "bad_listing", "missing_object", "hash_mismatch", "dangling_tag", "bad_latest"
    ]
    key: str
    """The store key that is wrong."""
    detail: str
    dataset: str | None = None
    number: int | None = None
    repaired: bool = False

    @property
    def ref(self) -> str | None:
        return f"{self.dataset}@{self.number}" if self.dataset and self.number else self.dataset


class FsckReport(BaseModel):
    """The result of ``fsck``: every problem, per version, and what was checked."""

    model_config = ConfigDict(frozen=True)
    datasets: int
    versions: int
    dropped: int = 0
    """Versions garbage collection dropped (their tombstones keep the numbers taken)."""
    tags: int
    objects: int
    bytes_hashed: int
    """Bytes downloaded and hashed (``deep``), or 0 when ETags and sizes sufficed."""
    unverified: int
    """Objects whose content was not hashed (a multipart ETag, and not ``deep``)."""
    stale_leases: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """No problem left unrepaired."""
        return all(p.repaired for p in self.problems)

    @property
    def broken_versions(self) -> list[str]:
        return sorted({p.ref for p in self.problems if p.number and not p.repaired and p.ref})
