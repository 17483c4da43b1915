"""The core of gitfree: versioned datasets in a store, with no git (imports neither prefect nor airflow)."""

from .config import AWS_NAMES, StoreSettings
from .errors import (
    ConfigError,
    ConflictError,
    GateError,
    GitfreeError,
    InputError,
    IntegrityError,
    NotFoundError,
    UnsafePathError,
    is_transient,
)
from .kit import format_size, stable_commit_id, tag_event, version_event
from .layout import MARKER as STORE_MARKER
from .models import AuditEvent, Author, Diff, DiffEntry, FileEntry, InputRef, Tag, TagEvent, Version
from .refs import Ref, parse_ref, validate_dataset_name, validate_tag_name
from .store import Store
from .tree import Tree

__all__ = [
    "AWS_NAMES",
    "STORE_MARKER",
    "AuditEvent",
    "Author",
    "ConfigError",
    "ConflictError",
    "Diff",
    "DiffEntry",
    "FileEntry",
    "GateError",
    "GitfreeError",
    "InputError",
    "InputRef",
    "IntegrityError",
    "NotFoundError",
    "Ref",
    "Store",
    "StoreSettings",
    "Tag",
    "TagEvent",
    "Tree",
    "UnsafePathError",
    "Version",
    "format_size",
    "is_transient",
    "parse_ref",
    "stable_commit_id",
    "tag_event",
    "validate_dataset_name",
    "validate_tag_name",
    "version_event",
]
