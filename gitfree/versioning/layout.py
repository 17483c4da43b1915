"""Keys of a store (docs/design.md, "Layout of a store"). The one place that spells them."""

from __future__ import annotations

import re

MARKER = "gitfree.json"
DATASETS = "datasets/"
LEASES = "leases/"
UPLOADS = "uploads/"
GC = "gc/"
GC_LOCK = f"{GC}lock.json"
PROBES = "probes/"
OBJECTS = "files/md5/"

OURS = (MARKER, DATASETS, OBJECTS, LEASES, UPLOADS, GC, PROBES)
"""What gitfree (and DVC, ``files/md5/``) writes in a store: anything else means the place holds other data."""

_VERSION_KEY = re.compile(r"^datasets/(?P<name>.+)/versions/(?P<number>\d{12})\.json$")
_TAG_KEY = re.compile(r"^datasets/(?P<name>.+)/tags/(?P<tag>[^/]+)\.json$")
_LATEST_KEY = re.compile(r"^datasets/(?P<name>.+)/latest\.json$")
_OBJECT_KEY = re.compile(r"^files/md5/(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{30})(?P<dir>\.dir)?$")
_MD5 = re.compile(r"[0-9a-f]{32}")
_MD5_IN_TEXT = re.compile(rb"[0-9a-f]{32}(?:\.dir)?")
_UPLOAD_KEY = re.compile(r"^uploads/(?P<lease>[0-9a-f-]{36})\.json$")


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


def lease_key(lease_id: str) -> str:
    return f"{LEASES}{lease_id}.json"


def upload_key(lease_id: str) -> str:
    """The journal of the objects a commit (holding lease ``lease_id``) uploads: what makes them gitfree's."""
    return f"{UPLOADS}{lease_id}.json"


def object_key(md5: str) -> str:
    """DVC 3's remote (and cache) layout: ``files/md5/ab/cdef…`` (``md5`` may end with ``.dir``)."""
    return f"{OBJECTS}{md5[:2]}/{md5[2:]}"


def is_md5(value: object) -> bool:
    """A file object's name: 32 lowercase hex digits."""
    return isinstance(value, str) and _MD5.fullmatch(value) is not None


def parse_version_key(key: str) -> tuple[str, int] | None:
    """``(dataset, number)`` for a version record key, else ``None``."""
    match = _VERSION_KEY.match(key)
    return (match["name"], int(match["number"])) if match else None


def parse_tag_key(key: str) -> tuple[str, str] | None:
    """``(dataset, tag)`` for a tag record key, else ``None``."""
    match = _TAG_KEY.match(key)
    return (match["name"], match["tag"]) if match else None


def parse_latest_key(key: str) -> str | None:
    """The dataset of a ``latest.json`` key, else ``None``."""
    match = _LATEST_KEY.match(key)
    return match["name"] if match else None


def parse_object_key(key: str) -> str | None:
    """The oid (``md5`` or ``md5.dir``) of an object key in DVC's remote layout, else ``None``."""
    match = _OBJECT_KEY.match(key)
    return f"{match['a']}{match['b']}{match['dir'] or ''}" if match else None


def parse_upload_key(key: str) -> str | None:
    """The lease id of an upload journal key, else ``None``."""
    match = _UPLOAD_KEY.match(key)
    return match["lease"] if match else None


def oids_in(raw: bytes) -> set[str]:
    """Every object name (``md5`` or ``md5.dir``) that appears anywhere in ``raw``: what a record that
    cannot be parsed may still name."""
    return {m.decode() for m in _MD5_IN_TEXT.findall(raw)}
