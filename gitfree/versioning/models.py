"""The records gitfree writes to a store, and the values its API returns.

Records we own are frozen and forbid unknown fields: a record that does not
parse is reported as an :class:`~gitfree.versioning.errors.IntegrityError`,
never guessed at.
"""

from __future__ import annotations

import getpass
import json
import math
import numbers
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    computed_field,
    field_validator,
    model_serializer,
    model_validator,
)

from .errors import InputError
from .layout import OID_PATTERN, is_listing
from .refs import validate_dataset_name

__all__ = [
    "REFERENCE_FORMAT",
    "AuditEvent",
    "Author",
    "Diff",
    "DiffEntry",
    "Dropped",
    "FileEntry",
    "FsckReport",
    "GcReport",
    "InputRef",
    "Lease",
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "MetricDelta",
    "MetricsDiff",
    "MetricsPoint",
    "Output",
    "Pointer",
    "Problem",
    "Reference",
    "ReferenceEntry",
    "References",
    "ReindexReport",
    "RunNote",
    "Stages",
    "StaleVersion",
    "StoreMarker",
    "Tag",
    "TagEvent",
    "Uploads",
    "UsedBy",
    "Version",
    "parse_metric",
]

FORMAT: Literal[1] = 1
REFERENCE_FORMAT: Literal[2] = 2
"""The format of a version by reference and of the ``latest.json`` holding one (docs/design.md, "Versions by
reference"): a gitfree that knows only format 1 refuses both by their format instead of reading them."""


def _metric_value(value: object) -> object:
    """A boolean is not a number (``True`` was recorded as ``1``); any other integer type (numpy's ``int64``,
    which pydantic made a float) is an integer."""
    if isinstance(value, bool):
        raise ValueError(f"{value} is a boolean, not a number")
    if isinstance(value, str):  # pydantic's lax mode read "5" as 5: text is parsed where it is text (parse_metric)
        raise ValueError(f"{value[:40]!r} is text, not a number: pass a number, or parse it with gitfree.parse_metric")
    if isinstance(value, numbers.Integral) and not isinstance(value, int):
        return int(value)
    return value


Metric = Annotated[int | float, BeforeValidator(_metric_value)]
"""A metric's value. In this order: pydantic keeps an int an int (JSON ``120000``) and a float a float
(``120000.0``); neither is converted to the other. A boolean is refused; numpy's integers are integers."""
METRIC_INT_MAX = 2**63 - 1
"""Integer metrics are 64-bit: what every reader of the JSON (and DVC's metrics) holds exactly."""
METRIC_INT_MIN = -(2**63)

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
"""A float as written in ASCII (Python's float() also takes ``1_000`` and other scripts' digits: not a metric)."""


def parse_metric(text: str) -> int | float:
    """A metric from text, as ``--metric rows=120000`` and Airflow's templated metrics give it: an integer
    (``120000``) stays an integer, a decimal (``0.91``, ``1e-3``) is a float; ASCII digits only.

    Raises:
        ValueError: the text is no number (``12abc``, ``1_000``); the caller names the metric.
        InputError: an integer of more than 19 digits (metrics fit in 64 bits).
    """
    text = text.strip()
    if _INTEGER.fullmatch(text):
        if len(text.lstrip("+-")) > 19:
            raise InputError(f"the integer {text[:24]}... has {len(text.lstrip('+-'))} digits; metrics fit in 64 bits")
        return int(text)
    if not _DECIMAL.fullmatch(text):
        raise ValueError(text)
    return float(text)


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

    @field_validator("dataset")
    @classmethod
    def _a_dataset_name(cls, dataset: str) -> str:
        try:
            return validate_dataset_name(dataset)
        except InputError as exc:  # pydantic reports a ValueError with the field's place
            raise ValueError(str(exc)) from None

    def __str__(self) -> str:
        return f"{self.dataset}@{self.number}"


class UsedBy(_Record):
    """``datasets/<input>/used-by/<n>/<dataset>@<m>.json``: the reverse lineage edge "``dataset@number`` was
    made from ``input@input_number``", written create-only after the record of ``dataset@number``.

    The key says it all (downstream lineage is one LIST); the body lets ``fsck`` and readers tell an edge
    from a forged or stale one (``id`` is the consumer's version id)."""

    format: Literal[1] = FORMAT
    input: str
    input_number: int = Field(ge=1)
    dataset: str
    number: int = Field(ge=1)
    id: uuid.UUID
    created_at: AwareDatetime


class LineageNode(BaseModel):
    """One version in a :class:`Lineage`."""

    model_config = ConfigDict(frozen=True)
    id: str
    """How edges name this node: its ref (``features@7``) in the store the lineage was asked of, else
    ``<store URL>#<ref>``."""
    ref: str
    dataset: str
    number: int
    store: str
    """URL of the store holding the version."""
    created_at: AwareDatetime | None = None
    author: Author | None = None
    message: str = ""
    dropped: bool = False
    """Garbage collection dropped this version (its record is a tombstone; ``created_at`` is still known)."""
    external: bool = False
    """The version is in a store that could not be read (unreachable, unknown, or no such version there)."""
    note: str = ""
    """Why an external node could not be read."""
    more: bool = False
    """At the depth limit: it was made from inputs that were not followed."""


class LineageEdge(BaseModel):
    """``source`` (an input) was used to make ``target``: node ids."""

    model_config = ConfigDict(frozen=True)
    source: str
    target: str


class Lineage(BaseModel):
    """What a version was made from (``up``), what was made from it (``down``), or both, as a graph."""

    model_config = ConfigDict(frozen=True)
    root: str
    """The node id of the version asked about."""
    store: str
    direction: Literal["up", "down", "both"]
    depth: int | None = None
    nodes: list[LineageNode]
    edges: list[LineageEdge]

    def node(self, node_id: str) -> LineageNode:
        """The node with that id (``KeyError`` if there is none)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def inputs_of(self, node_id: str) -> list[str]:
        """The ids of the nodes ``node_id`` was made from, sorted."""
        return sorted(e.source for e in self.edges if e.target == node_id)

    def consumers_of(self, node_id: str) -> list[str]:
        """The ids of the nodes made from ``node_id``, sorted."""
        return sorted(e.target for e in self.edges if e.source == node_id)

    def _label(self, node: LineageNode) -> str:
        state = " (dropped)" if node.dropped else " (unreadable)" if node.external else ""
        where = "" if node.store == self.store else f"\n{node.store}"
        return f"{node.ref}{state}{where}"

    def to_dot(self) -> str:
        """The graph in Graphviz's dot language (inputs point at what was made from them)."""
        quote = _dot_string
        lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
        for node in self.nodes:
            style = ", style=dashed, color=gray50" if node.dropped else ", style=dotted" if node.external else ""
            bold = ", penwidth=2" if node.id == self.root else ""
            lines.append(f"  {quote(node.id)} [label={quote(self._label(node))}{style}{bold}];")
        lines += [f"  {quote(e.source)} -> {quote(e.target)};" for e in self.edges]
        return "\n".join([*lines, "}"]) + "\n"

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (for Markdown that renders Mermaid)."""
        ids = {node.id: f"n{i}" for i, node in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for node in self.nodes:
            label = self._label(node).replace("\n", "<br>").replace('"', "#quot;")
            lines.append(f'  {ids[node.id]}["{label}"]')
        lines += [f"  {ids[e.source]} --> {ids[e.target]}" for e in self.edges]
        dropped = [ids[n.id] for n in self.nodes if n.dropped or n.external]
        if dropped:
            lines += ["  classDef gone stroke-dasharray: 5 5,color:#777", f"  class {','.join(dropped)} gone"]
        lines.append(f"  style {ids[self.root]} stroke-width:3px")
        return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    """``text`` as a quoted string of the dot language."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class StaleVersion(BaseModel):
    """A dataset's newest version made from an input that has a newer version with other data since; or, with
    ``newest`` ``None``, one whose input could not be checked (``note`` says why)."""

    model_config = ConfigDict(frozen=True)
    ref: str
    """The stale version, e.g. ``model@4``."""
    input: str
    """The input it was made from, e.g. ``features@7``."""
    input_store: str | None = None
    """The input's store, when it is not this store."""
    newest: str | None
    """The input's newest version now, e.g. ``features@9``; ``None`` when it could not be read."""
    note: str = ""

    def __str__(self) -> str:
        where = f" (in {self.input_store})" if self.input_store else ""
        if self.newest is None:
            return f"{self.ref}: cannot tell whether its input {self.input}{where} is out of date: {self.note}"
        dataset, _, number = self.newest.rpartition("@")
        return f"{self.ref} was made from {self.input}{where}; {dataset} is now at @{number}"


class StepStatus(BaseModel):
    """Whether a dataset's newest version is what its versioned step would make now (``gitfree status``)."""

    model_config = ConfigDict(frozen=True)
    ref: str
    """The newest version, e.g. ``features@7``."""
    step: str | None = None
    """The step that made it (``module:qualname``), ``None`` when no step made it."""
    code_changed: bool | None = None
    """Whether the step's code differs now from the code that made it; ``None`` when that cannot be told."""
    code_version: tuple[str | None, str | None] | None = None
    """The ``code_version`` it was made with and the step's now, when they differ."""
    params: dict[str, tuple[JsonValue, JsonValue]] = Field(default_factory=dict)
    """Parameter → (made with, the step's default now), for each whose default differs from what it was made with."""
    params_added: list[str] = Field(default_factory=list)
    """Parameters the step has now and did not have then."""
    params_removed: list[str] = Field(default_factory=list)
    """Parameters it was made with that the step no longer has."""
    inputs: list[StaleVersion] = Field(default_factory=list)
    """Inputs with a newer version since (as :meth:`Store.stale` reports)."""
    note: str = ""
    """Why the code or parameters could not be compared (the step is not importable, ...)."""

    @property
    def up_to_date(self) -> bool:
        return (
            not (self.code_changed or self.code_version or self.params or self.params_added or self.params_removed)
            and not self.inputs
        )

    def lines(self) -> list[str]:
        """What ``gitfree status`` prints for it."""
        made = f" (made by the step {self.step})" if self.step else ""
        out = []
        if self.code_changed:
            out.append(f"{self.ref}: the code of its step changed since it was made{made}")
        if self.code_version:
            then_version, now_version = self.code_version
            out.append(f"{self.ref}: the step's code_version is {now_version!r}; it was made with {then_version!r}")
        for name, (then, now) in self.params.items():
            now_text = json.dumps(now)
            out.append(f"{self.ref}: made with {name}={json.dumps(then)}; a call with the defaults now uses {now_text}")
        out.extend(f"{self.ref}: the step has a new parameter {name}" for name in self.params_added)
        out.extend(
            f"{self.ref}: made with the parameter {name}, which the step no longer has" for name in self.params_removed
        )
        out.extend(str(item) for item in self.inputs)
        if self.note:
            out.append(f"{self.ref}: {self.note}")
        if not out:
            out.append(f"{self.ref} is up to date{made}")
        return out


class ReindexReport(BaseModel):
    """What ``reindex`` (or ``fsck --repair``) did to the reverse lineage edges."""

    model_config = ConfigDict(frozen=True)
    versions: int
    """Versions whose inputs were read."""
    edges: int
    """Edges that exist now (written or already there)."""
    written: list[str] = Field(default_factory=list)
    """Keys of the edges that were missing and are written now."""
    removed: list[str] = Field(default_factory=list)
    """Keys of edges whose consumer was dropped, or does not exist or name that input: removed."""


class Output(_Record):
    """One ``outs`` entry of a ``.dvc`` file, as DVC writes it."""

    md5: str = Field(pattern=OID_PATTERN)
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
        return is_listing(self.md5)


class Pointer(_Record):
    """The content of the ``.dvc`` file of a version: what DVC needs to ``dvc pull`` it."""

    outs: list[Output] = Field(min_length=1, max_length=1)

    @property
    def out(self) -> Output:
        return self.outs[0]


class Reference(_Record):
    """What a version by reference names: its reference table (``references/<table>.json``) and its source."""

    table: str = Field(pattern=r"^[0-9a-f]{32}$")
    source: str


class Version(_Record):
    """An immutable, committed version of a dataset (format 1; format 2 with ``reference``: a version by
    reference, whose files stay in its source)."""

    format: Literal[1, 2] = FORMAT
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
    reference: Reference | None = None
    """Only in format 2: the reference table and source of a version by reference (not written when ``None``,
    so a format-1 record is byte for byte what a gitfree before references writes)."""
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
            if isinstance(value, int) and not METRIC_INT_MIN <= value <= METRIC_INT_MAX:
                raise ValueError(
                    f"the metric {name!r} is an integer of {len(str(abs(value)))} digits; integer metrics must fit "
                    "in 64 bits (record larger numbers in metadata, or as a float)"
                )
        return metrics

    @model_validator(mode="after")
    def _format_says_reference(self) -> Version:
        if (self.format == REFERENCE_FORMAT) != (self.reference is not None):
            raise ValueError("a version has format 2 exactly when it is by reference (it has a reference)")
        return self

    @model_serializer(mode="wrap")
    def _without_no_reference(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if self.reference is None:
            data.pop("reference", None)
        return data

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
    md5: str = Field(pattern=OID_PATTERN)
    dropped_at: AwareDatetime
    dropped_by: Author = Field(default_factory=Author)
    inputs: list[InputRef] = Field(default_factory=list)
    """The inputs of the version that was dropped: lineage goes on through it."""

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"


class ReferenceEntry(_Record):
    """One file of a version by reference: where its bytes are and what they were when it was committed
    (docs/design.md, "Versions by reference"). S3 entries have ``etag`` (and ``version_id`` when the bucket
    versions objects); file entries have ``mtime_ns``, ``inode`` and ``device``. Azure (``az``) entries are as
    S3's (the blob's ETag, its ``versionId`` when the account versions blobs); GCS (``gs``) entries have the
    object's ``etag`` and its generation in ``version_id``, which pins the bytes."""

    path: str = Field(min_length=1)
    """The key below the source prefix, which is also the listing's ``relpath``."""
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")
    size: int = Field(ge=0)
    etag: str | None = None
    version_id: str | None = None
    mtime_ns: int | None = None
    inode: int | None = None
    device: int | None = None


class References(_Record):
    """``references/<md5>.json``: the reference table of a version by reference, named by its bytes' md5.

    The commit by reference (:func:`.protocol.commit_by_reference`) creates it, create-only, before the version
    record that names it; :meth:`.Catalog.references` reads it back."""

    format: Literal[1] = FORMAT
    source: str
    """The source prefix, ending in ``/``: ``s3://bucket/prefix/``, ``az://container/prefix/``,
    ``gs://bucket/prefix/`` or ``file:///shared/folder/``."""
    kind: Literal["s3", "file", "az", "gs"]
    entries: list[ReferenceEntry] = Field(min_length=1)
    endpoint: str | None = Field(default=None, min_length=1)
    """An ``s3`` source committed with source options of its own: the endpoint they reach
    (:func:`.config.endpoint_id`, ``"aws"`` for AWS S3 itself), never a credential; a reader reads the files with
    its own source options for that endpoint (docs/design.md, "Source options"). ``None``: the store's."""

    @model_validator(mode="after")
    def _consistent(self) -> References:
        if not self.source.endswith("/"):
            raise ValueError(f"the source {self.source!r} of a reference table must end with '/'")
        if self.endpoint is not None and self.kind != "s3":
            raise ValueError(f"a {self.kind} reference table names no S3 endpoint")
        paths = [entry.path for entry in self.entries]
        if paths != sorted(set(paths)):
            raise ValueError("the entries of a reference table must be sorted by path, each path once")
        for entry in self.entries:
            s3 = entry.etag is not None and entry.mtime_ns is None and entry.inode is None and entry.device is None
            local = (
                entry.etag is None
                and entry.version_id is None
                and None not in (entry.mtime_ns, entry.inode, entry.device)
            )
            if not (local if self.kind == "file" else s3):
                raise ValueError(f"the entry {entry.path!r} does not have the fields of a {self.kind} reference")
            if self.kind == "gs" and not (entry.version_id or "").isdigit():
                raise ValueError(f"the entry {entry.path!r} of a gs reference has no generation in version_id")
            if entry.version_id == "null":
                raise ValueError(f"the entry {entry.path!r} has VersionId 'null', which pins nothing")
        return self

    def listing(self) -> bytes:
        """The DVC ``.dir`` listing of these files, byte for byte what dvc-data writes for them (``relpath`` and
        ``md5`` of each, sorted by ``relpath``, ``json.dumps`` with sorted keys): a function of the table, so a
        reader rebuilds it and checks it against the version's ``pointer``."""
        items = sorted(({"md5": e.md5, "relpath": e.path} for e in self.entries), key=lambda item: item["relpath"])
        return json.dumps(items, sort_keys=True).encode("utf-8")

    def data(self) -> bytes:
        """The table's bytes as written at ``references/<md5 of them>.json`` (no field that is ``None``)."""
        return self.model_dump_json(exclude_none=True).encode()


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


class StepRun(_Record):
    """``steps/<key>/<n>.json``: the versioned step whose key is ``key`` made (or found up to date) version
    ``number`` of ``dataset`` (docs/design.md, "Versioned steps"). Create-only, written after the version's
    record: a later call of the step with the same key returns that version without running."""

    format: Literal[1] = FORMAT
    key: str = Field(pattern=r"^[0-9a-f]{64}$")
    step: str
    """Where the step is defined: ``module:qualname``."""
    dataset: str
    number: int = Field(ge=1)
    code: str
    """The fingerprint of the step's code (sha256 of its source)."""
    code_version: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    inputs: dict[str, InputRef] = Field(default_factory=dict)
    """Each input by its parameter name: the exact version read."""
    paths: dict[str, list[str]] = Field(default_factory=dict)
    """The parts of inputs the step took (``paths=``), by parameter name."""
    created_at: AwareDatetime
    host: str | None = None


class Tag(_Record):
    """A name pointing at one version of one dataset (``datasets/<name>/tags/<tag>.json``).

    The record is also the newest event of the tag's history: every write (creation, move, deletion)
    replaces it by compare-and-swap with ``seq`` one higher, so the chain of records is the order in which
    the writes took effect, and each one's history entry (:class:`TagEvent`) is derived from it alone
    (docs/design.md, "Tag moves"). A deleted tag keeps its record as a marker (``deleted``), so its history
    goes on and a later creation continues the count; every reader treats it as absent.
    """

    format: Literal[1] = FORMAT
    dataset: str
    tag: str
    number: int = Field(ge=1)
    """The version the tag points at; for a deleted tag, the one it pointed at when it was deleted."""
    created_at: AwareDatetime
    """When this record was written (a move rewrites it)."""
    author: Author = Field(default_factory=Author)
    """Who wrote this record."""
    seq: int = Field(default=0, ge=0)
    """1 for the creation, one more for each move or deletion; 0 for a record written before tag history was
    kept (its history is that one state)."""
    previous: int | None = Field(default=None, ge=1)
    """The version the tag pointed at before this write; ``None`` when it did not exist (or was deleted)."""
    message: str = ""
    """Why the tag was moved, as its writer said."""
    gate: str = ""
    """What a promotion checked before this move (its metric gate and stage order, with the values
    compared), e.g. ``accuracy 0.95 >= 0.93 of models/churn@6 (production)``; empty for a plain tag move."""
    deleted: bool = False
    """The tag was deleted by this write (``untag``): readers treat it as absent."""
    written: bool | None = Field(default=None, exclude=True)
    """Not part of the record. On what :meth:`Store.tag`, :meth:`Store.promote` and :meth:`Store.untag`
    return: true when that call wrote this record, false when the tag already pointed there (nothing was
    written). ``None`` on a tag read from the store."""

    def __eq__(self, other: object) -> bool:
        # The record is the tag: ``written`` says what one call did, not what the tag is.
        if not isinstance(other, Tag):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash((self.dataset, self.tag, self.seq, self.number))

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.tag}"

    @property
    def version_ref(self) -> str:
        """The exact ref of the version the tag points at (pointed at, when deleted), e.g. ``images@3``."""
        return f"{self.dataset}@{self.number}"


_BEFORE_HISTORY = "(written before tag history was kept: earlier moves are not known)"


class TagEvent(_Record):
    """One write of a tag, as its history keeps it (``datasets/<name>/tag-history/<tag>/<seq>.json``).

    Made from the tag record that write left (:meth:`of`), and from nothing else, so every writer of an
    entry writes the same one. ``previous`` of each entry is ``number`` of the entry before it.
    """

    format: Literal[1] = FORMAT
    dataset: str
    tag: str
    seq: int = Field(ge=0)
    action: Literal["created", "moved", "deleted"]
    number: int | None = Field(default=None, ge=1)
    """The version the tag points at after this write; ``None`` for a deletion."""
    previous: int | None = Field(default=None, ge=1)
    """The version it pointed at before; ``None`` for a creation."""
    created_at: AwareDatetime
    author: Author = Field(default_factory=Author)
    message: str = ""
    gate: str = ""

    @classmethod
    def of(cls, tag: Tag) -> TagEvent:
        """The history entry of the write that left the record ``tag``."""
        action: Literal["created", "moved", "deleted"]
        number: int | None
        previous: int | None
        if tag.deleted:
            action, number, previous = "deleted", None, tag.previous if tag.previous is not None else tag.number
        else:
            action, number, previous = "created" if tag.previous is None else "moved", tag.number, tag.previous
        return cls(
            dataset=tag.dataset,
            tag=tag.tag,
            seq=tag.seq,
            action=action,
            number=number,
            previous=previous,
            created_at=tag.created_at,
            author=tag.author,
            message=tag.message or (_BEFORE_HISTORY if tag.seq == 0 else ""),
            gate=tag.gate,
        )

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.tag}"


class Stages(_Record):
    """``datasets/<name>/stages.json``: the order of the stages (tags) a dataset's versions are promoted through.

    With ``["dev", "staging", "production"]``, :meth:`Store.promote` puts a version in ``dev`` freely, in
    ``staging`` only while it holds ``dev``, and in ``production`` only while it holds ``staging``.
    """

    format: Literal[1] = FORMAT
    dataset: str
    stages: list[str]
    created_at: AwareDatetime
    author: Author = Field(default_factory=Author)


class AuditEvent(BaseModel):
    """One entry of a dataset's audit trail (:meth:`Store.audit`): a commit, a version garbage collection
    dropped, or a write of a tag (created, moved, deleted), with who made it, when and in which run."""

    model_config = ConfigDict(frozen=True)
    at: AwareDatetime
    """When it happened, by the clock of the worker that did it."""
    kind: Literal["commit", "dropped", "tag"]
    action: Literal["committed", "dropped", "created", "moved", "deleted"]
    dataset: str
    number: int | None = None
    """The version committed or dropped, or that the tag points at after the write (``None``: deleted)."""
    tag: str | None = None
    previous: int | None = None
    """For a tag write: the version the tag pointed at before."""
    seq: int | None = None
    """For a tag write: its place in the tag's history."""
    author: Author = Field(default_factory=Author)
    message: str = ""
    gate: str = ""

    @property
    def ref(self) -> str:
        """``images@3`` for a commit or a drop, ``images@prod`` for a tag write."""
        return f"{self.dataset}@{self.tag if self.tag is not None else self.number}"


class Latest(_Record):
    """``latest.json``: a hint to the newest version, with its record so a reader needs one request."""

    format: Literal[1, 2] = FORMAT
    """2 when ``version`` is by reference (so a gitfree before references refuses it by its format)."""
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
    kind: Literal["commit", "gc", "step"] = "commit"
    """``step``: the claim of a worker running a versioned step (``steps/<key>/claim.json``), not a commit."""
    dataset: str | None = None
    pointer: str | None = None
    """md5 of the output the commit will reference (``….dir`` for a directory); a step's claim: the step key."""
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
    in_sources: int = 0
    """Objects it would have deleted that lie under the source of a kept version by reference, so were kept (R2:
    GC deletes no source object; only a source that overlaps the store, which a commit refuses, has any)."""
    unreadable_records: list[str] = Field(default_factory=list)
    """Keys of version records that could not be read. Their datasets drop nothing; the objects they may
    name are kept (see :meth:`Store.gc`)."""
    sweep_skipped: str | None = None
    """Why no object was deleted this time, when a record gave no clue of what it references."""
    edges_removed: int = 0
    """Reverse lineage edges of dropped versions removed (or, in a dry run, to remove)."""
    tables_deleted: list[str] = Field(default_factory=list)
    """Keys of the reference tables (``references/<md5>.json``) no kept version names, removed (or to remove): those
    of dropped versions, and those a commit by reference killed before its record left."""
    tables_too_young: int = 0
    """Reference tables no kept version names, left because they are younger than the grace period."""
    run_notes_removed: int = 0
    """Run notes (``runs/``: the versions orchestrator runs pulled) older than ``RUN_NOTES_KEPT`` (30 days),
    removed (a dry run: that would be). They are lineage hints of finished runs, never needed for safety."""
    step_notes_removed: int = 0
    """Notes of versioned steps (``steps/<key>/``) naming a dropped version, removed (or to remove): such a
    step runs again when called."""
    step_claims_stale: int = 0
    """Claims of workers that died running a step: counted, never removed (the next call of the step takes
    one over by compare-and-swap; a removal could race with a worker taking it over)."""


class Problem(BaseModel):
    """One thing ``fsck`` found wrong, with the version it breaks and whether ``repair`` fixed it."""

    model_config = ConfigDict(frozen=True)
    kind: Literal[
        "bad_record",
        "missing_listing",
        "bad_listing",
        "missing_object",
        "hash_mismatch",
        "dangling_tag",
        "bad_latest",
        "missing_edge",
        "orphan_edge",
        "orphan_step",
        "missing_table",
        "bad_table",
        "drift",
        "source_unreadable",
    ]
    key: str
    """The store key that is wrong (for ``drift``, the source object's URL; for ``source_unreadable``, the
    source's)."""
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
    notes: list[Problem] = Field(default_factory=list)
    """What was found that breaks no version, so does not fail ``fsck``: the drift of a source file of a version by
    reference that ``files/md5/`` holds too (materialised: reads take the store's copy)."""
    sources: int = 0
    """Source objects of versions by reference looked at (one HEAD or ``stat`` each; ``deep``: read and hashed)."""

    @property
    def ok(self) -> bool:
        """No problem left unrepaired."""
        return all(p.repaired for p in self.problems)

    @property
    def broken_versions(self) -> list[str]:
        """Versions whose data or record is broken (a missing or orphan lineage edge, or a step note that names
        a version the step did not make, breaks no version)."""
        return sorted(
            {
                p.ref
                for p in self.problems
                if p.number and not p.repaired and p.ref and not p.kind.endswith(("_edge", "_step"))
            }
        )


# ---------------------------------------------------------------------------- metrics across versions


def _decimal(value: Metric) -> Decimal:
    """A metric as the decimal number it reads as (``repr`` of a float: its shortest round-trip digits)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _finite_or_none(value: Decimal) -> float | None:
    result = float(value)
    return result if math.isfinite(result) else None


def metric_change(old: Metric, new: Metric) -> tuple[Metric | None, float | None]:
    """``(new - old, (new - old) / |old|)`` of two metric values; ``None`` where undefined.

    An integer minus an integer is an integer. Otherwise the difference is taken on the values as they
    read (0.91 - 0.89 is 0.02, not binary floating point's 0.020000000000000018), then made a float. The
    relative change is ``None`` when ``old`` is 0, and either is ``None`` when it overflows a float (a
    difference of two values near the largest float): a delta is always a finite number, or nothing.
    """
    with localcontext() as context:
        context.prec = 34
        delta = _decimal(new) - _decimal(old)
        relative = delta / abs(_decimal(old)) if old != 0 else None
    exact: Metric | None = new - old if isinstance(old, int) and isinstance(new, int) else _finite_or_none(delta)
    return exact, _finite_or_none(relative) if relative is not None else None


def format_metric(value: Metric, *, sign: bool = False) -> str:
    """A metric as recorded: an integer as an integer, a float with every digit it has (``+`` on request)."""
    text = str(value) if isinstance(value, int) else repr(value)
    return f"+{text}" if sign and value >= 0 and not text.startswith("-") else text


def _percent(relative: float) -> str:
    shown = relative * 100
    return f"{shown:+,.1f}%" if abs(shown) >= 0.1 or shown == 0 else f"{shown:+.2g}%"


class MetricsPoint(BaseModel):
    """The metrics of one version, as :meth:`Store.metrics` lists them (newest first)."""

    model_config = ConfigDict(frozen=True)
    ref: str
    """The exact ref of the version, e.g. ``images@7``."""
    number: int
    created_at: AwareDatetime
    metrics: dict[str, Metric]
    """Name → value: every metric of the version, or those asked for."""


class MetricDelta(BaseModel):
    """One metric from version ``old`` to version ``new``.

    ``status`` is ``changed``, ``unchanged`` (equal values: ``3`` and ``3.0`` too), ``added`` (only
    ``new`` has it) or ``removed`` (only ``old`` has it). ``delta`` is ``new - old`` (an integer when both
    are integers) and ``relative`` is ``delta / |old|``; both are ``None`` where undefined: a side
    missing, ``old`` of 0 (``relative``), or a result too large for a float.
    """

    model_config = ConfigDict(frozen=True)
    name: str
    status: Literal["added", "removed", "changed", "unchanged"]
    old: Metric | None = None
    new: Metric | None = None
    delta: Metric | None = None
    relative: float | None = None

    @property
    def change(self) -> str:
        """The change for people: ``▲ +0.02 (+2.2%)``, ``▼ -3``, ``=``, ``added`` or ``removed``."""
        if self.status in ("added", "removed"):
            return self.status
        if self.status == "unchanged":
            return "="
        arrow = "▲" if (self.new or 0) > (self.old or 0) else "▼"
        percent = f" ({_percent(self.relative)})" if self.relative is not None else ""
        return f"{arrow}{'' if self.delta is None else ' ' + format_metric(self.delta, sign=True)}{percent}"

    def __str__(self) -> str:
        """For people: ``acc 0.89 → 0.91 (+0.02, +2.2%)``, ``rows 100 (unchanged)``, ``f1 0.5 (added)``,
        ``loss removed (was 0.3)``."""
        if self.status == "added" and self.new is not None:
            return f"{self.name} {format_metric(self.new)} (added)"
        if self.status == "removed" and self.old is not None:
            return f"{self.name} removed (was {format_metric(self.old)})"
        if self.old is None or self.new is None:  # not made by MetricsDiff.between
            return f"{self.name} {self.status}"
        if self.status == "unchanged":
            return f"{self.name} {format_metric(self.new)} (unchanged)"
        parts = [] if self.delta is None else [format_metric(self.delta, sign=True)]
        parts += [] if self.relative is None else [_percent(self.relative)]
        change = f" ({', '.join(parts)})" if parts else ""
        return f"{self.name} {format_metric(self.old)} → {format_metric(self.new)}{change}"


class MetricsDiff(BaseModel):
    """The metrics of version ``old`` against version ``new``, metric by metric (sorted by name).

    ``added`` and ``removed`` name the metrics only one side has (they are in ``metrics`` too, with
    their ``status``). Made by :meth:`Store.compare`.
    """

    model_config = ConfigDict(frozen=True)
    old: str
    new: str
    metrics: list[MetricDelta]

    @field_validator("metrics")
    @classmethod
    def _sorted(cls, metrics: list[MetricDelta]) -> list[MetricDelta]:
        return sorted(metrics, key=lambda m: m.name)

    @classmethod
    def between(
        cls, old: str, old_metrics: Mapping[str, Metric], new: str, new_metrics: Mapping[str, Metric]
    ) -> MetricsDiff:
        """Compare the metrics ``old_metrics`` (of the version ``old``) with ``new_metrics`` (of ``new``)."""
        entries = []
        for name in sorted({*old_metrics, *new_metrics}):
            a, b = old_metrics.get(name), new_metrics.get(name)
            if a is None or b is None:
                status: Literal["added", "removed", "changed", "unchanged"] = "added" if a is None else "removed"
                entries.append(MetricDelta(name=name, status=status, old=a, new=b))
                continue
            delta, relative = metric_change(a, b)
            status = "unchanged" if a == b else "changed"
            entries.append(MetricDelta(name=name, status=status, old=a, new=b, delta=delta, relative=relative))
        return cls(old=old, new=new, metrics=entries)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def added(self) -> list[str]:
        """The metrics only ``new`` has."""
        return [m.name for m in self.metrics if m.status == "added"]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def removed(self) -> list[str]:
        """The metrics only ``old`` has."""
        return [m.name for m in self.metrics if m.status == "removed"]

    @property
    def changed(self) -> list[MetricDelta]:
        """The metrics both have, with different values."""
        return [m for m in self.metrics if m.status == "changed"]

    def get(self, name: str) -> MetricDelta | None:
        """The entry of the metric ``name``, if either side has it."""
        return next((m for m in self.metrics if m.name == name), None)

    def __bool__(self) -> bool:
        """Whether any metric differs (changed, added or removed)."""
        return any(m.status != "unchanged" for m in self.metrics)
