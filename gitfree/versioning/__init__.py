"""The core of gitfree: versioned datasets in a store, with no git (imports neither prefect nor airflow)."""

from .config import StoreSettings
from .errors import ConfigError, ConflictError, GitfreeError, InputError, IntegrityError, NotFoundError, UnsafePathError
from .errors import is_transient as is_transient
from .kit import format_size
from .models import Author, Diff, DiffEntry, FileEntry, InputRef, Tag, Version
from .refs import Ref, parse_ref
from .store import Store

__all__ = [
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
    "NotFoundError",
    "Ref",
    "Store",
    "StoreSettings",
    "Tag",
    "UnsafePathError",
    "Version",
    "format_size",
    "parse_ref",
]
