"""Errors a user of gitfree can meet, one class per thing to do about it.

::

    GitfreeError
     ├── ConfigError            bad store URL, missing credentials, server without conditional writes
     ├── InputError             a malformed ref or name, a source path that is missing or empty,
     │                          a destination that holds other files
     ├── NotFoundError          dataset, version or tag that does not exist (says what does)
     ├── ConflictError          a tag or ref moved under us; retries exhausted; GC holds the store
     │    └── GateError         a promotion its metric gate or stage order refused
     ├── IntegrityError         an object whose hash does not match, a missing object, a broken record
     └── UnsafePathError        a manifest entry that would write outside its destination

Every message says what happened and what to do next, and never contains a secret.

A message is written in Python terms (``pass move=True``). One that names an option of the API
says which, with ``options``: pairs of (Python term, command-line term), e.g.
``ConflictError("... pass move=True to move it", options=(("move=True", "--move"),))``.
:meth:`GitfreeError.in_cli_terms` is the message as the ``gitfree`` command prints it (``pass --move``);
``str(error)`` stays in Python terms.

:func:`is_transient` tells whether trying the same call again may succeed (the orchestrators'
retries use it): a lost connection, a server error, throttling, another writer or a garbage
collection in the way can pass; bad input, a missing version, an unsafe or corrupted record, wrong
credentials cannot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "ConfigError",
    "ConflictError",
    "GateError",
    "GitfreeError",
    "InputError",
    "IntegrityError",
    "NotFoundError",
    "UnsafePathError",
    "first_error",
    "is_transient",
]

_RETRYABLE_STATUS = frozenset({408, 429})
"""HTTP statuses below 500 that say "later" (request timeout, throttling)."""
_CONNECTION_ERRORS = ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError")
"""botocore's failures to reach a server (``ConfigError`` "cannot reach the S3 endpoint"): the network can come back."""


class GitfreeError(Exception):
    """Base class of every error gitfree raises on purpose.

    ``exit_code`` is what the ``gitfree`` command exits with when this error ends it. ``options`` pairs
    each Python term the message names (``"move=True"``) with what the command line calls it
    (``"--move"``); see :meth:`in_cli_terms`.
    """

    exit_code = 1
    transient = True
    """May the same call succeed if tried again? A plain ``GitfreeError`` is a failed request (a server
    error, a dropped connection, a failed delete): yes. An instance may say otherwise; read it with
    :func:`is_transient`."""

    def __init__(self, *args: object, options: Iterable[tuple[str, str]] = (), cli: str | None = None) -> None:
        super().__init__(*args)
        self.options: tuple[tuple[str, str], ...] = tuple(options)
        """(Python term, command-line term) of each option the message names, in the order they are replaced."""
        self.cli = cli
        """The whole message in command-line terms, for one whose terms sit beside user data (a folder
        named like a Python term must not be rewritten): then :attr:`options` is not used."""

    def in_cli_terms(self) -> str:
        """The message as the ``gitfree`` command says it: :attr:`cli` if given, else each Python term of
        :attr:`options` replaced by its command-line term (``pass move=True`` becomes ``pass --move``)."""
        if self.cli is not None:
            return self.cli
        text = str(self)
        for python, cli in self.options:
            text = text.replace(python, cli)
        return text


class ConfigError(GitfreeError):
    """The store cannot be used as configured: URL, credentials, bucket or server."""

    exit_code = 6
    transient = False


class InputError(GitfreeError, ValueError):
    """An argument is malformed or names a path that cannot be used."""

    exit_code = 2
    transient = False


class NotFoundError(GitfreeError, LookupError):
    """A dataset, version or tag does not exist."""

    exit_code = 3
    transient = False


class ConflictError(GitfreeError):
    """Another writer got there first, or the store is locked for garbage collection."""

    exit_code = 4
    transient = True


class GateError(ConflictError):
    """A promotion was refused: the candidate fails the metric gate (the message shows both values), lacks
    a metric the gate needs, or does not hold the stage before the one it is promoted to. Asking again
    gives the same answer until the stage's holder changes, so it is not transient."""

    transient = False


class IntegrityError(GitfreeError):
    """Stored data does not match its hash, is missing, or a record cannot be read."""

    exit_code = 5
    transient = False


class UnsafePathError(GitfreeError):
    """A version names a path that would land outside the destination."""

    exit_code = 7
    transient = False


def is_transient(exc: BaseException) -> bool:
    """May trying the same call again succeed? What the Prefect tasks and Airflow operators retry on.

    Yes for a lost connection, a server error (5xx), throttling, a write whose outcome is unknown,
    another writer or a garbage collection in the way (:class:`ConflictError`), and for an error that
    is not gitfree's (an unknown failure: as likely to pass as not). No for :class:`InputError`,
    :class:`NotFoundError`, :class:`UnsafePathError`, :class:`IntegrityError` (the stored bytes do
    not change by asking again) and :class:`ConfigError` (credentials, bucket, URL, a server without
    conditional writes) — except an endpoint that could not be reached, which the network may bring
    back — nor for a plain :class:`GitfreeError` a server answered with a 4xx other than 408 or 429.
    """
    if not isinstance(exc, GitfreeError):
        return True
    cause = exc.__cause__ or exc.__context__  # ``raise ... from None`` still keeps the context
    if isinstance(exc, ConfigError) and cause is not None and type(cause).__name__ in _CONNECTION_ERRORS:
        return True
    if not exc.transient:
        return False
    response = getattr(cause, "response", None)  # botocore's ClientError
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int) and 400 <= status < 500 and status not in _RETRYABLE_STATUS:
            return False
    return True


def first_error(exc: ValidationError) -> str:
    """The first thing pydantic found wrong, as ``where: what`` (never the value: it may be a secret)."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "value"
    return f"{where}: {error.get('msg', 'invalid')}"
