"""Prefect tasks over :class:`gitfree.Store`: thin wrappers that add provenance, lineage, artifacts and events."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from gitfree.versioning import (
    Diff,
    InputRef,
    SourceOptions,
    Store,
    Tag,
    Version,
    format_count,
    format_size,
    is_transient,
)

from . import _runtime, _tags
from .blocks import GitfreeStore

__all__ = [
    "commit_dataset",
    "diff_versions",
    "list_versions",
    "promote_version",
    "pull_dataset",
    "resolve_store",
    "tag_version",
]

StoreLike = str | os.PathLike[str] | Store | GitfreeStore | None

logger = logging.getLogger(__name__)


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn`` of every gitfree task: retry only what a retry can fix.

    A lost connection, a server error, throttling, another writer or a garbage collection in the way
    is retried; bad input, a missing version, an unsafe or corrupted record or wrong credentials fail
    the task at once (:func:`gitfree.versioning.is_transient`).
    """
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            result = state.result(raise_on_failure=False)
        except Exception:  # the exception could not be read back: retry, as Prefect would
            return True
        exc = result if isinstance(result, BaseException) else None
    if exc is None or is_transient(exc):
        return True
    _run_logger().info("not retrying: %s (%s) cannot pass by trying again", type(exc).__name__, exc)
    return False


def _run_logger() -> Any:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def resolve_store(store: StoreLike) -> Store:
    """A :class:`Store` from a URL, a ``Store``, a ``GitfreeStore`` block, or ``None`` (the environment)."""
    if isinstance(store, Store):
        return store
    if isinstance(store, GitfreeStore):
        return store.get_store()
    return Store(store)


@task(
    name="gitfree-commit",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_if_transient,
    task_run_name="commit {dataset}",
)
def commit_dataset(
    dataset: str,
    path: str | os.PathLike[str],
    store: StoreLike = None,
    message: str = "",
    metadata: Mapping[str, JsonValue] | None = None,
    metrics: Mapping[str, float] | None = None,
    inputs: Iterable[str | Version | InputRef] | None = None,
    force: bool = False,
    auto_inputs: bool = True,
    by_reference: bool = False,
    source_options: SourceOptions | None = None,
) -> Version:
    """Commit a file or directory as the next version of a dataset (``by_reference=True``: the files of an
    ``s3://bucket/prefix/`` or a shared folder, versioned where they are, read with ``source_options`` when
    given, else the store's; see :meth:`gitfree.Store.commit`).

    Inside a flow run the version's author records the flow, flow run and task run, and the versions
    :func:`pull_dataset` pulled earlier in the same flow run are added to ``inputs``, whichever task runner
    or worker pulled them (they are noted in the store; ``auto_inputs=False`` leaves them out). A version
    pulled from another store is found when this process pulled from that store too; else pass it in
    ``inputs``. A new version publishes a table
    artifact (key ``gitfree-<dataset>``) and the event ``gitfree.dataset.committed``; unchanged
    data returns the newest version (``created`` false) and publishes nothing. Retries reuse the commit
    id, so a retried task never makes a second version of the same data, and publishes the version its
    earlier attempt made once (the event's id is the version's). Only errors a retry can fix are
    retried (:func:`retry_if_transient`): a missing path or version fails at once.

    Example:
        ```python
        from prefect import flow
        from gitfree.tasks import commit_dataset

        @flow
        def nightly():
            version = commit_dataset("images", "/data/images", store="s3://ml-data/versions", message="nightly")
            print(version.ref, version.nfiles, version.size)
        ```
    """
    target = resolve_store(store)
    lineage = [*(inputs or ()), *(_runtime.noted_inputs(target, dataset) if auto_inputs else ())]
    commit_id = _runtime.commit_id(dataset)
    version = target.commit(
        dataset,
        path,
        message=message,
        metadata=metadata,
        metrics=metrics,
        inputs=lineage,
        author=_runtime.author(),
        force=force,
        commit_id=commit_id,
        by_reference=by_reference,
        source_options=source_options,
    )
    # ``created`` is true when this task run made it: this attempt, or an earlier one that died before
    # publishing (the retry passes the same commit id, and Store.commit recognises its own record).
    if version.created:
        _runtime.publish(target, version)
        files, size = format_count(version.nfiles, "file"), format_size(version.size)
        _run_logger().info("committed %s (%s, %s)", version.ref, files, size)
    else:
        _run_logger().info("%s is unchanged since %s: no new version, no artifact, no event", dataset, version.ref)
    return version


@task(
    name="gitfree-pull",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_if_transient,
    task_run_name="pull {ref}",
)
def pull_dataset(
    ref: str,
    dest: str | os.PathLike[str],
    store: StoreLike = None,
    overwrite: bool = False,
    paths: Sequence[str] | None = None,
) -> Version:
    """Materialise a version at ``dest`` in this worker and return the version pulled.

    Only objects missing from the worker cache are downloaded. Inside a flow run the version is noted in
    the store as used in it (one small record, ``runs/prefect:<flow run id>/…``), so that what
    :func:`commit_dataset` commits later in the same flow run, in any process or worker, records it as an
    input. A note that cannot be written (a read-only credential) is a warning: the pull still succeeds.

    Example:
        ```python
        from prefect import flow
        from gitfree.tasks import pull_dataset

        @flow
        def train(ref: str = "images@prod"):
            version = pull_dataset(ref, "/tmp/images", store="s3://ml-data/versions")
            ...  # read /tmp/images
        ```
    """
    target = resolve_store(store)
    version = target.show(ref)
    target.pull(version, Path(dest), overwrite=overwrite, paths=paths)
    if not _runtime.note_pull(target, version):
        _run_logger().warning(
            "pulled %s, but could not note it as used in this flow run (see gitfree's warning): a commit in "
            "this run will not record it as an input unless it is passed in inputs=",
            version.ref,
        )
    return version


@task(
    name="gitfree-tag", cache_policy=NO_CACHE, retry_condition_fn=retry_if_transient, task_run_name="tag {ref} as {tag}"
)
def tag_version(ref: str, tag: str, store: StoreLike = None, move: bool = False, message: str = "") -> Tag:
    """Point a tag (``prod``) at a version; ``move=True`` moves an existing tag.

    The tag's history records the flow run as the author of the move, with ``message``. A write of the tag
    emits the event ``gitfree.tag.moved`` (payload: :func:`gitfree.versioning.tag_event`, with ``from``
    and ``to``); a tag already pointing there writes and emits nothing.

    Example:
        ```python
        from gitfree.tasks import tag_version
        tag_version("images@12", "prod", store="s3://ml-data/versions", move=True)
        ```
    """
    target = resolve_store(store)
    made = target.tag(ref, tag, move=move, message=message, author=_runtime.author())
    if made.written:
        _tags.publish_tag(target, made)
    return made


@task(
    name="gitfree-promote",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_if_transient,
    task_run_name="promote {ref} to {stage}",
)
def promote_version(
    ref: str,
    stage: str,
    store: StoreLike = None,
    require: Mapping[str, str] | Sequence[str] | None = None,
    message: str = "",
) -> Tag:
    """Move the stage tag ``stage`` to ``ref`` if its metrics pass ``require`` (see :meth:`gitfree.Store.promote`).

    ``require`` is ``{"accuracy": ">="}`` (at least the current holder's) or ``{"f1": ">= 0.9"}`` (at least
    0.9). A refusal raises ``GateError`` with both values in its message, and is not retried; a promotion
    raced by another move of the stage is retried (and judged again against the new holder). A promotion
    emits the event ``gitfree.tag.moved`` about the resource ``gitfree.tag.<dataset>@<stage>``, with ``from``
    and ``to`` in its payload; the flow run is the author in the stage's history.

    Example:
        ```python
        from prefect import flow
        from gitfree.tasks import promote_version

        @flow
        def release(candidate: str = "models/churn@7"):
            promote_version(candidate, "production", store="s3://ml-data/versions", require={"accuracy": ">="})
        ```
    """
    target = resolve_store(store)
    made = target.promote(ref, stage, require=require, message=message, author=_runtime.author())
    if made.written:
        _tags.publish_tag(target, made)
        _run_logger().info("promoted %s to %s (was %s): %s", made.version_ref, stage, made.previous, made.gate or "-")
    else:
        _run_logger().info("%s already holds %s: nothing promoted, no event", made.version_ref, stage)
    return made


@task(name="gitfree-log", cache_policy=NO_CACHE, retry_condition_fn=retry_if_transient, task_run_name="log {dataset}")
def list_versions(dataset: str, store: StoreLike = None, limit: int | None = None) -> list[Version]:
    """The versions of a dataset, newest first.

    Example:
        ```python
        from gitfree.tasks import list_versions
        newest = list_versions("images", store="s3://ml-data/versions", limit=1)[0]
        ```
    """
    return resolve_store(store).log(dataset, limit=limit)


@task(
    name="gitfree-diff", cache_policy=NO_CACHE, retry_condition_fn=retry_if_transient, task_run_name="diff {old} {new}"
)
def diff_versions(old: str, new: str, store: StoreLike = None) -> Diff:
    """Paths added, removed and modified between two versions, with sizes.

    Example:
        ```python
        from gitfree.tasks import diff_versions
        changes = diff_versions("images@11", "images@12", store="s3://ml-data/versions")
        print(len(changes.added), len(changes.modified))
        ```
    """
    return resolve_store(store).diff(old, new)
