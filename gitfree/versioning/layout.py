"""Keys of a store (see DESIGN.md, "Layout of a store"). The one place that spells them."""

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

_VERSION_KEY = re.compile(r"^datasets/(?P<name>.+)/versions/(?P<number>\d{12})\.json$")
_TAG_KEY = re.compile(r"^datasets/(?P<name>.+)/tags/(?P<tag>[^/]+)\.json$")
_LATEST_KEY = re.compile(r"^datasets/(?P<name>.+)/latest\.json$")
_OBJECT_KEY = re.compile(r"^files/md5/(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{30})(?P<dir>\.dir)?$")
_UPLOAD_KEY = re.compile(r"^uploads/(?P<lease>[0-9a-f-]{36})\.json$")


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
    """DVC 3's remote (and cache) layout: ``files/md5/ab/cdef…``."""
    return f"files/md5/{md5[:2]}/{md5[2:]}"


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
