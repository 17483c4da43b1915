"""Keys of a store (see DESIGN.md, "Layout of a store"). The one place that spells them."""

from __future__ import annotations

import re

MARKER = "gitfree.json"
DATASETS = "datasets/"
LEASES = "leases/"
GC_LOCK = "gc/lock.json"
PROBES = "probes/"

_VERSION_KEY = re.compile(r"^datasets/(?P<name>.+)/versions/(?P<number>\d{12})\.json$")


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


def object_key(md5: str) -> str:
    """DVC 3's remote (and cache) layout: ``files/md5/ab/cdef…``."""
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def parse_version_key(key: str) -> tuple[str, int] | None:
    """``(dataset, number)`` for a version record key, else ``None``."""
    match = _VERSION_KEY.match(key)
    return (match["name"], int(match["number"])) if match else None
