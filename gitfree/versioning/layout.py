"""Keys of a store (docs/design.md, "Layout of a store"). The one place that spells them."""

from __future__ import annotations

import hashlib
import re

MARKER = "gitfree.json"
DATASETS = "datasets/"
LEASES = "leases/"
UPLOADS = "uploads/"
GC = "gc/"
GC_LOCK = f"{GC}lock.json"
PROBES = "probes/"
OBJECTS = "files/md5/"
RUNS = "runs/"
STEPS = "steps/"
REFERENCES = "references/"
CACHE_TMP = ".gitfree-tmp/"
"""In a worker cache (not a store): the temporary files of downloads and reads by reference, renamed into
``files/md5/`` once checked; a killed writer's are swept (docs/design.md, "Temporary files")."""
"""Where the reference tables of versions by reference live: ``references/<md5 of the table>.json``
(docs/design.md, "Versions by reference")."""
"""Where versioned steps note what they made: ``steps/<step key>/`` (docs/design.md, "Versioned steps")."""
USED_BY = "used-by"
"""The segment under a dataset holding its reverse lineage edges (what was made from its versions)."""
TAG_HISTORY = "tag-history"
"""The segment under a dataset holding the history of its tags (one create-only entry per move)."""

RESERVED_SEGMENTS = frozenset({"versions", "tags", USED_BY, TAG_HISTORY})
"""Segments a dataset name may not have: they would collide with these keys under ``datasets/<name>/``."""

OURS = (MARKER, DATASETS, OBJECTS, LEASES, UPLOADS, GC, PROBES, RUNS, STEPS, REFERENCES)
"""What gitfree (and DVC, ``files/md5/``) writes in a store: anything else means the place holds other data."""

_VERSION_KEY = re.compile(r"^datasets/(?P<name>.+)/versions/(?P<number>\d{12})\.json$")
_TAG_KEY = re.compile(r"^datasets/(?P<name>.+)/tags/(?P<tag>[^/]+)\.json$")
_LATEST_KEY = re.compile(r"^datasets/(?P<name>.+)/latest\.json$")
_OBJECT_KEY = re.compile(r"^files/md5/(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{30})(?P<dir>\.dir)?$")
_MD5 = re.compile(r"[0-9a-f]{32}")
_MD5_IN_TEXT = re.compile(rb"[0-9a-f]{32}(?:\.dir)?")
_USED_BY_KEY = re.compile(
    rf"^datasets/(?P<name>.+)/{USED_BY}/(?P<number>\d{{12}})/(?P<consumer>.+)@(?P<cnumber>\d{{12}})\.json$"
)
_TAG_EVENT_KEY = re.compile(rf"^datasets/(?P<name>.+)/{TAG_HISTORY}/(?P<tag>[^/]+)/(?P<seq>\d{{12}})\.json$")
_RUN_USE_KEY = re.compile(r"^runs/(?P<run>[^/]+)/(?P<name>.+)@(?P<number>\d{12})\.json$")
_STEP_RESULT_KEY = re.compile(r"^steps/(?P<key>[0-9a-f]{64})/(?P<name>.+)@(?P<number>\d{12})\.json$")
_STEP_CLAIM_KEY = re.compile(r"^steps/(?P<key>[0-9a-f]{64})/claim\.json$")
_STEP = re.compile(r"[0-9a-f]{64}")
_UPLOAD_KEY = re.compile(r"^uploads/(?P<lease>[0-9a-f-]{36})\.json$")
_REFERENCE_KEY = re.compile(r"^references/(?P<md5>[0-9a-f]{32})\.json$")
_STAGES_KEY = re.compile(r"^datasets/(?P<name>.+)/stages\.json$")


def _own_name(name: str) -> bool:
    """Whether ``name``, read from a key, can be a dataset's: no reserved segment. A tag's history under
    ``datasets/<name>/tag-history/<tag>/`` must never read as the records of a dataset ``<name>/tag-history``
    (a tag named ``versions`` or ``tags`` would otherwise make its entries look like version records or tags)."""
    return not any(segment in RESERVED_SEGMENTS for segment in name.split("/"))


def is_store_key(key: str) -> bool:
    """Whether ``key`` is one of gitfree's (or DVC's objects), not somebody's other data."""
    return key.startswith(OURS)


def dataset_prefix(name: str) -> str:
    return f"{DATASETS}{name}/"


def versions_prefix(name: str) -> str:
    return f"{DATASETS}{name}/versions/"


def version_key(name: str, number: int) -> str:
    return f"{DATASETS}{name}/versions/{number:012d}.json"


def tags_prefix(name: str) -> str:
    return f"{DATASETS}{name}/tags/"


def tag_key(name: str, tag: str) -> str:
    return f"{DATASETS}{name}/tags/{tag}.json"


def latest_key(name: str) -> str:
    return f"{DATASETS}{name}/latest.json"


def used_by_prefix(name: str, number: int | None = None) -> str:
    """Where the reverse edges of ``name@number`` are (of every version of ``name`` without ``number``)."""
    base = f"{DATASETS}{name}/{USED_BY}/"
    return base if number is None else f"{base}{number:012d}/"


def used_by_key(name: str, number: int, consumer: str, consumer_number: int) -> str:
    """The reverse edge "``consumer@consumer_number`` was made from ``name@number``" (create-only, written
    after the consumer's record): downstream lineage is one LIST of :func:`used_by_prefix`."""
    return f"{used_by_prefix(name, number)}{consumer}@{consumer_number:012d}.json"


def parse_used_by_key(key: str) -> tuple[str, int, str, int] | None:
    """``(input, number, consumer, consumer_number)`` for a reverse edge key, else ``None``."""
    match = _USED_BY_KEY.match(key)
    if not match:
        return None
    return match["name"], int(match["number"]), match["consumer"], int(match["cnumber"])


def stages_key(name: str) -> str:
    """The stage order of ``name`` (for example ``dev``, ``staging``, ``production``), which promotions follow."""
    return f"{DATASETS}{name}/stages.json"


def parse_stages_key(key: str) -> str | None:
    """The dataset of a ``stages.json`` key, else ``None``."""
    match = _STAGES_KEY.match(key)
    return match["name"] if match and _own_name(match["name"]) else None


def tag_history_prefix(name: str, tag: str | None = None) -> str:
    """Where the history of ``tag`` of ``name`` is (of every tag without ``tag``)."""
    base = f"{DATASETS}{name}/{TAG_HISTORY}/"
    return base if tag is None else f"{base}{tag}/"


def tag_event_key(name: str, tag: str, seq: int) -> str:
    """The entry of the write that made ``tag``'s record number ``seq`` (1: its creation; each move or deletion
    adds one; 0: the record of a tag written before tag history was kept), create-only."""
    return f"{tag_history_prefix(name, tag)}{seq:012d}.json"


def parse_tag_event_key(key: str) -> tuple[str, str, int] | None:
    """``(dataset, tag, seq)`` for a tag history key, else ``None``."""
    match = _TAG_EVENT_KEY.match(key)
    return (match["name"], match["tag"], int(match["seq"])) if match and _own_name(match["name"]) else None


def run_prefix(run: str) -> str:
    """Where the versions used in an orchestrator run are noted. ``run`` is any string (for example
    ``prefect:<flow run id>``, ``airflow:<dag id>:<run id>``); its key segment is the string with
    characters other than ``A-Za-z0-9._-`` made ``_`` (at most 80), then 16 hex digits of its sha256,
    so distinct runs never share a prefix and no key needs percent-encoding."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", run)[:80]
    return f"{RUNS}{slug}-{hashlib.sha256(run.encode()).hexdigest()[:16]}/"


def run_use_key(run: str, name: str, number: int) -> str:
    """The note "``name@number`` was used (pulled) in ``run``"."""
    return f"{run_prefix(run)}{name}@{number:012d}.json"


def parse_run_use_key(key: str) -> tuple[str, str, int] | None:
    """``(run segment, dataset, number)`` for a run note key, else ``None``."""
    match = _RUN_USE_KEY.match(key)
    return (match["run"], match["name"], int(match["number"])) if match else None


def step_prefix(step_key: str) -> str:
    """Where a step's results and claim are: one LIST tells whether a step with this key ran, and made what."""
    if not _STEP.fullmatch(step_key):
        raise ValueError(f"not a step key: {step_key!r}")
    return f"{STEPS}{step_key}/"


def step_result_key(step_key: str, name: str, number: int) -> str:
    """The note "the step with this key made (or found up to date) ``name@number``", create-only, written
    after the version's record; the key names the version, so one LIST finds it (and GC needs no read)."""
    return f"{step_prefix(step_key)}{name}@{number:012d}.json"


def step_claim_key(step_key: str) -> str:
    """The claim of the worker running the step with this key (a lease: renewed while the body runs)."""
    return f"{step_prefix(step_key)}claim.json"


def parse_step_result_key(key: str) -> tuple[str, str, int] | None:
    """``(step key, dataset, number)`` for a step result key, else ``None``."""
    match = _STEP_RESULT_KEY.match(key)
    return (match["key"], match["name"], int(match["number"])) if match and _own_name(match["name"]) else None


def parse_step_claim_key(key: str) -> str | None:
    """The step key of a claim key, else ``None``."""
    match = _STEP_CLAIM_KEY.match(key)
    return match["key"] if match else None


def lease_key(lease_id: str) -> str:
    return f"{LEASES}{lease_id}.json"


def upload_key(lease_id: str) -> str:
    """The journal of the objects a commit (holding lease ``lease_id``) uploads: what makes them gitfree's."""
    return f"{UPLOADS}{lease_id}.json"


def object_key(md5: str) -> str:
    """DVC 3's remote (and cache) layout: ``files/md5/ab/cdef…`` (``md5`` may end with ``.dir``)."""
    return f"{OBJECTS}{md5[:2]}/{md5[2:]}"


def reference_key(md5: str) -> str:
    """The reference table whose bytes have the md5 ``md5``: content-addressed, so written create-only once."""
    return f"{REFERENCES}{md5}.json"


def parse_reference_key(key: str) -> str | None:
    """The md5 of a reference table's key, else ``None``."""
    match = _REFERENCE_KEY.match(key)
    return match["md5"] if match else None


LISTING = ".dir"
"""What ends the name (oid) of a directory's listing object, after its md5 (DVC's ``md5.dir``)."""
OID_PATTERN = r"^[0-9a-f]{32}(\.dir)?$"
"""An object's name, ``md5`` or ``md5.dir``, as a pattern (of the records' fields that name one)."""


def is_listing(oid: str) -> bool:
    """Whether ``oid`` (or its object key) names a directory's ``.dir`` listing, not a file's content."""
    return oid.endswith(LISTING)


def md5_of(oid: str) -> str:
    """The md5 of an object's bytes: its oid, less the ``.dir`` of a listing."""
    return oid.removesuffix(LISTING)


def listing_oid(md5: str) -> str:
    """The oid of the listing whose bytes have this md5."""
    return f"{md5}{LISTING}"


def probe_key(token: str) -> str:
    """A write probe's key (created, created again, swapped with a stale ETag, deleted: docs/design.md,
    "The write probe")."""
    return f"{PROBES}{token}"


def is_md5(value: object) -> bool:
    """A file object's name: 32 lowercase hex digits."""
    return isinstance(value, str) and _MD5.fullmatch(value) is not None


def md5_of_etag(etag: str, *, encrypted: bool) -> str | None:
    """The md5 an S3 ETag says the bytes have, or ``None`` when it says nothing of it (docs/design.md,
    "Versions by reference"). Only a single-part upload without SSE-KMS or SSE-C has the plain MD5 as its
    ETag: 32 hex digits, quoted or not. A multipart ETag (``<32 hex>-<parts>``) and any ETag of an object
    the server encrypted with KMS or a customer key (``encrypted``, from the HEAD's headers) are not md5s,
    and neither is anything else; such an object must be read and hashed."""
    value = etag[1:-1] if len(etag) >= 2 and etag[0] == etag[-1] == '"' else etag
    value = value.lower()
    return value if not encrypted and _MD5.fullmatch(value) else None


def parse_version_key(key: str) -> tuple[str, int] | None:
    """``(dataset, number)`` for a version record key, else ``None``."""
    match = _VERSION_KEY.match(key)
    return (match["name"], int(match["number"])) if match and _own_name(match["name"]) else None


def parse_tag_key(key: str) -> tuple[str, str] | None:
    """``(dataset, tag)`` for a tag record key, else ``None``."""
    match = _TAG_KEY.match(key)
    return (match["name"], match["tag"]) if match and _own_name(match["name"]) else None


def parse_latest_key(key: str) -> str | None:
    """The dataset of a ``latest.json`` key, else ``None``."""
    match = _LATEST_KEY.match(key)
    return match["name"] if match and _own_name(match["name"]) else None


def parse_object_key(key: str) -> str | None:
    """The oid (``md5`` or ``md5.dir``) of an object key in DVC's remote layout, else ``None``."""
    match = _OBJECT_KEY.match(key)
    return f"{match['a']}{match['b']}{match['dir'] or ''}" if match else None


_STAGED_OBJECT = re.compile(r"^[0-9a-f]{30}(\.dir)?#[0-9]+$")


def is_staged_object(filename: str) -> bool:
    """Whether ``filename`` (in a folder store's ``files/md5/xx/``) is obstore's staging file of an object
    being uploaded (``NAME#N``, renamed to ``NAME`` once whole): a killed upload leaves it."""
    return _STAGED_OBJECT.match(filename) is not None


def parse_upload_key(key: str) -> str | None:
    """The lease id of an upload journal key, else ``None``."""
    match = _UPLOAD_KEY.match(key)
    return match["lease"] if match else None


def oids_in(raw: bytes) -> set[str]:
    """Every object name (``md5`` or ``md5.dir``) that appears anywhere in ``raw``: what a record that
    cannot be parsed may still name."""
    return {m.decode() for m in _MD5_IN_TEXT.findall(raw)}
