"""What the integrations (Prefect tasks, Airflow operators, flows, the CLI) share, written once.

* :func:`stable_commit_id`: the commit id a retried task passes again, so ``Store.commit`` recognises
  the version its earlier attempt made (``Version.created`` then says so);
* :func:`version_event`: what a Prefect event and an Airflow asset event (and XCom) say about a version;
* :func:`tag_event`: the same about a write of a tag (a promotion);
* :func:`format_size`: a size in bytes for people.

How a store is reached from AWS-style credential names is :meth:`StoreSettings.from_aws
<gitfree.versioning.config.StoreSettings.from_aws>`, and from a store to s3fs
:meth:`~gitfree.versioning.config.StoreSettings.s3fs_options`.

This module imports only gitfree.versioning's models, config and errors (never prefect or airflow, and
not the store): it sits below :mod:`gitfree.versioning.store` in the layering.
"""

from __future__ import annotations

import uuid

from pydantic import JsonValue

from .models import Author, Tag, TagEvent, Version

__all__ = ["COMMIT_NAMESPACES", "format_count", "format_size", "stable_commit_id", "tag_event", "version_event", "who"]

COMMIT_NAMESPACES: dict[str, uuid.UUID] = {
    "prefect": uuid.UUID("6b0f7e43-5d0c-4c55-9b1e-6c8e3f0a9d21"),
    "airflow": uuid.UUID("3f4c1a52-9a0e-4c1b-8d57-0b7e3f1c2a64"),
}
"""The UUID namespace of each orchestrator's commit ids. These two are the ones the Prefect tasks and the
Airflow helpers used before they shared this module: a retry of a task started by an older gitfree
computes the same id, so it still recognises the version its earlier attempt made."""
_OTHER_NAMESPACES = uuid.UUID("0c6f3a0e-8d5b-5f2e-9a41-7e2b9c1d4f60")
"""The namespace of the namespaces not in :data:`COMMIT_NAMESPACES` (``uuid5(this, name)``)."""


def stable_commit_id(namespace: str, *parts: str) -> uuid.UUID:
    """The commit id of one orchestrated task: the same for every try of it, different for any other.

    ``namespace`` names the orchestrator (``"prefect"``, ``"airflow"``, or any other name); ``parts``
    are what identify the task's run and the dataset, e.g. ``(task_run_id, dataset)`` for Prefect or
    ``(dag_id, run_id, task_label, dataset)`` for Airflow. The id is ``uuid5`` of the namespace's UUID
    and the parts joined with ``/``.

    Raises:
        ValueError: no parts, or a part that is not a non-empty string.
    """
    if not parts or not all(isinstance(part, str) and part for part in parts):
        raise ValueError(f"stable_commit_id needs one or more non-empty strings, not {parts!r}")
    space = COMMIT_NAMESPACES.get(namespace) or uuid.uuid5(_OTHER_NAMESPACES, namespace)
    return uuid.uuid5(space, "/".join(parts))


def version_event(version: Version, store_url: str) -> dict[str, JsonValue]:
    """What an event about ``version`` of the store at ``store_url`` carries (JSON values only).

    The payload of the Prefect event ``gitfree.dataset.committed`` and the ``extra`` of an Airflow asset
    event (and of a gitfree operator's XCom): ``ref``, ``dataset``, ``number``, ``store``, ``size``,
    ``nfiles``, ``md5``, ``version_id``, ``created_at`` (ISO 8601) and ``message``; a version by reference
    adds ``source``, the URL its files stay at.
    """
    event: dict[str, JsonValue] = {
        "ref": version.ref,
        "dataset": version.dataset,
        "number": version.number,
        "store": store_url,
        "size": version.size,
        "nfiles": version.nfiles,
        "md5": version.md5,
        "version_id": str(version.id),
        "created_at": version.created_at.isoformat(),
        "message": version.message,
    }
    if version.reference is not None:
        event["source"] = version.reference.source
    return event


def tag_event(tag: Tag, store_url: str) -> dict[str, JsonValue]:
    """What an event about a write of ``tag`` (a creation, move or deletion) carries (JSON values only).

    The payload of the Prefect event ``gitfree.tag.moved`` and the ``extra`` of an Airflow asset event of
    the tag: ``ref`` (the exact version now tagged, ``images@7``; ``None`` once deleted), ``tag_ref``
    (``images@prod``), ``dataset``, ``tag``, ``seq`` (its place in the tag's history), ``action``
    (``created``, ``moved``, ``deleted``), ``from`` and ``to`` (version numbers, ``None`` for none),
    ``from_ref``, ``store``, ``created_at`` (ISO 8601), ``by`` (``user@host``), ``message`` and ``gate``.
    """
    event = TagEvent.of(tag)
    return {
        "ref": f"{tag.dataset}@{event.number}" if event.number is not None else None,
        "tag_ref": tag.ref,
        "dataset": tag.dataset,
        "tag": tag.tag,
        "seq": tag.seq,
        "action": event.action,
        "from": event.previous,
        "to": event.number,
        "from_ref": f"{tag.dataset}@{event.previous}" if event.previous is not None else None,
        "store": store_url,
        "created_at": tag.created_at.isoformat(),
        "by": f"{tag.author.user or '?'}@{tag.author.host or '?'}",
        "message": tag.message,
        "gate": tag.gate,
    }


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_count(n: int, noun: str) -> str:
    """``n`` things for people, in English: ``"1 file"``, ``"0 files"``, ``"2 files"`` (``noun`` singular,
    plural by an ``s``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_size(n: int) -> str:
    """A size in bytes for people: ``"512 B"``, ``"1.5 KiB"``, ``"3.2 GiB"`` (binary units, up to TiB).

    Bytes are whole; larger units have one decimal. A value that would round to 1024.0 of a unit
    is written in the next one (``1048575`` is ``"1.0 MiB"``, not ``"1024.0 KiB"``).
    """
    value = float(n)
    for unit in _UNITS:
        shown = round(value) if unit == "B" else round(value, 1)
        if abs(shown) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def who(author: Author) -> str:
    """``user@host``, with the orchestrator run when there is one: ``ana@ws1 (prefect: train, run 5d1e…)``."""
    text = f"{author.user or '?'}@{author.host or '?'}"
    if author.pipeline or author.run_id:
        run = f", run {author.run_id}" if author.run_id else ""
        text += f" ({author.orchestrator or 'run'}: {author.pipeline or '?'}{run})"
    return text
