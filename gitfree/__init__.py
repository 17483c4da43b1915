"""gitfree: commit and fetch dataset versions from orchestrated workers, with DVC's data format and no git.

``from gitfree import Store`` is all most users need; see the README for a tour.
"""

from importlib.metadata import PackageNotFoundError, version

from .versioning import (
    Author,
    ConfigError,
    ConflictError,
    Diff,
    DiffEntry,
    FileEntry,
    GitfreeError,
    InputError,
    InputRef,
    IntegrityError,
    NotFoundError,
    Ref,
    Store,
    StoreSettings,
    Tag,
    UnsafePathError,
    Version,
    parse_ref,
)

try:
    __version__ = version("gitfree")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

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
    "__version__",
    "parse_ref",
]
