"""Errors a user of gitfree can meet, one class per thing to do about it.

::

    GitfreeError
     ├── ConfigError            bad store URL, missing credentials, server without conditional writes
     ├── InputError             a malformed ref or name, a source path that is missing or empty,
     │                          a destination that holds other files
     ├── NotFoundError          dataset, version or tag that does not exist (says what does)
     ├── ConflictError          a tag or ref moved under us; retries exhausted; GC holds the store
     ├── IntegrityError         an object whose hash does not match, a missing object, a broken record
     └── UnsafePathError        a manifest entry that would write outside its destination

Every message says what happened and what to do next, and never contains a secret.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "GitfreeError",
    "InputError",
    "IntegrityError",
    "NotFoundError",
    "UnsafePathError",
]


class GitfreeError(Exception):
    """Base class of every error gitfree raises on purpose.

    ``exit_code`` is what the ``gitfree`` command exits with when this error ends it.
    """

    exit_code = 1


class ConfigError(GitfreeError):
    """The store cannot be used as configured: URL, credentials, bucket or server."""

    exit_code = 6


class InputError(GitfreeError, ValueError):
    """An argument is malformed or names a path that cannot be used."""

    exit_code = 2


class NotFoundError(GitfreeError, LookupError):
    """A dataset, version or tag does not exist."""

    exit_code = 3


class ConflictError(GitfreeError):
    """Another writer got there first, or the store is locked for garbage collection."""

    exit_code = 4


class IntegrityError(GitfreeError):
    """Stored data does not match its hash, is missing, or a record cannot be read."""

    exit_code = 5


class UnsafePathError(GitfreeError):
    """A version names a path that would land outside the destination."""

    exit_code = 7
