"""The core of gitfree: versioned datasets in a store, with no git (imports neither prefect nor airflow)."""

from .config import AWS_NAMES, StoreSettings
from .errors import (
    ConfigError,
    ConflictError,
    GitfreeError,
    InputError,
    IntegrityError,
    NotFoundError,
    UnsafePathError,
    is_transient,
)
from .kit import format_size, stable_commit_id, version_event
from .layout import MARKER as STORE_MARKER
from .models import (
    Author,
    Diff,
    DiffEntry,
    FileEntry,
    InputRef,
    Lineage,
    LineageEdge,
    LineageNode,
    MetricDelta,
    MetricsDiff,
    MetricsPoint,
    ReindexReport,
    StaleVersion,
    Tag,
    Version,
)
from .refs import Ref, parse_ref, validate_dataset_name
from .store import Store
from .tree import Tree

__all__ = [
    "AWS_NAMES",
    "STORE_MARKER",
    "Author",
    "ConfigError",
    "ConflictError",
    "Diff",
    "DiffEntry",
    "FileEntry",
    "GitfreeError",
    "InputError",
    "InputRef",
    "IntegrityError",
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "MetricDelta",
    "MetricsDiff",
    "MetricsPoint",
    "NotFoundError",
    "Ref",
    "ReindexReport",
    "StaleVersion",
    "Store",
    "StoreSettings",
    "Tag",
    "Tree",
    "UnsafePathError",
    "Version",
    "format_size",
    "is_transient",
    "parse_ref",
    "stable_commit_id",
    "validate_dataset_name",
    "version_event",
]
