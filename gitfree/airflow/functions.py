"""Commit, pull and tag from inside any Airflow task (TaskFlow ``@task`` functions included).

Each function finds the running task itself: a commit records the DAG, run and task in the
version's author and emits the asset event of a new version; a pull can take the version an
asset event names. Outside a task they work as plain calls to :class:`gitfree.Store`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Asset
from pydantic import JsonValue

from gitfree.versioning import InputRef, Store, Tag, Version

from . import _runtime

__all__ = ["commit_dataset", "pull_dataset", "tag_version", "version_from_asset"]

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "gitfree_default"


def commit_with_store(
    dataset: str,
    path: str | os.PathLike[str],
    *,
    gitfree_conn_id: str | None,
    store: str | Store | None,
    message: str,
    metadata: Mapping[str, JsonValue] | None,
    metrics: Mapping[str, float] | None,
    inputs: Iterable[str | Version | InputRef] | None,
    force: bool,
    context: Mapping[str, Any] | None,
    auto_inputs: bool = True,
    by_reference: bool = False,
) -> tuple[Version, Store]:
    """:func:`commit_dataset`, and the store it committed to (the operators' XCom names its URL).

    ``version.created`` says whether this task instance made the version (false: the data equals the
    newest version, no event was emitted).
    """
    context = _runtime.context_or_current(context)
    with _runtime.translated():
        target = _runtime.store_from(gitfree_conn_id, store)
        attempt = _runtime.commit_id(context, dataset)
        lineage = [*(inputs or ()), *(_runtime.noted_inputs(context, target, dataset) if auto_inputs else ())]
        version = target.commit(
            dataset,
            path,
            message=message,
            metadata=metadata,
            metrics=metrics,
            inputs=lineage,
            author=_runtime.author(context),
            force=force,
            commit_id=attempt,
            by_reference=by_reference,
        )
    # ``created`` is true when this task instance made it: this try, or an earlier one that died before
    # its asset event (the retry passes the same commit id, and Store.commit recognises its own record).
    if version.created:
        _runtime.emit(context, version, target, log)
    else:
        log.info("no asset event: %s is unchanged since %s (no new version)", dataset, version.ref)
    return version, target


def commit_dataset(
    dataset: str,
    path: str | os.PathLike[str],
    *,
    gitfree_conn_id: str | None = DEFAULT_CONN_ID,
    store: str | Store | None = None,
    message: str = "",
    metadata: Mapping[str, JsonValue] | None = None,
    metrics: Mapping[str, float] | None = None,
    inputs: Iterable[str | Version | InputRef] | None = None,
    force: bool = False,
    context: Mapping[str, Any] | None = None,
    auto_inputs: bool = True,
    by_reference: bool = False,
) -> Version:
    """Commit a file or directory as the next version of ``dataset``, from inside an Airflow task.

    The version's author records the DAG id, run id and task id, and the versions of this store pulled
    earlier in the same DAG run (by :func:`pull_dataset` or ``GitfreePullOperator``, in any task, on any
    worker) are added to ``inputs``; ``auto_inputs=False`` leaves them out. A new version emits an event of
    the asset ``gitfree://<dataset>`` (its ``extra`` names the version) if the task declares
    ``outlets=[dataset_outlet(dataset)]``; unchanged data returns the newest version and emits
    nothing; ``version.created`` says which. A retried task recognises the version its earlier try made
    (``created`` is true for it, and its event is emitted by the try that succeeds).

    Args:
        dataset: e.g. ``images`` or ``raw/sales``.
        path: the file or directory to commit.
        gitfree_conn_id: the Airflow connection of the store (``None``: ``GITFREE_*`` variables).
        store: a store URL overriding the connection's, or a :class:`gitfree.Store`.
        message, metadata, metrics, inputs, force: as for :meth:`gitfree.Store.commit`.
        context: the task's context (default: the running task's).
        auto_inputs: add the versions pulled earlier in this DAG run to ``inputs`` (a version pulled from
            another store is not found: pass it in ``inputs``).
        by_reference: version the files where they are (:meth:`gitfree.Store.commit`): ``path`` is then a source
            URL (``s3://bucket/prefix/``, or a folder every worker shares); nothing is uploaded, and an unchanged
            source makes no version and reads no object. The asset event's ``extra`` then has ``source``.

    Raises:
        AirflowFailException: an error retrying cannot fix (bad input such as a malformed name or a missing,
            empty or unreadable path; wrong credentials; a corrupted record): the task fails without retrying.
        AirflowException: an error a retry may fix (a lost connection, a server error, another writer or
            a garbage collection in the way): the task's retries apply. The message says what to do.

    Example:
        ```python
        from airflow.sdk import task
        from gitfree.airflow import commit_dataset, dataset_outlet

        @task(outlets=[dataset_outlet("images")])
        def build() -> str:
            ...  # write /tmp/images
            return commit_dataset("images", "/tmp/images", message="nightly").ref
        ```
    """
    version, _ = commit_with_store(
        dataset,
        path,
        gitfree_conn_id=gitfree_conn_id,
        store=store,
        message=message,
        metadata=metadata,
        metrics=metrics,
        inputs=inputs,
        force=force,
        context=context,
        auto_inputs=auto_inputs,
        by_reference=by_reference,
    )
    return version


def materialize_with_store(
    ref: str, *, gitfree_conn_id: str | None, store: str | Store | None
) -> tuple[Version, Store]:
    """Copy a version by reference into its store (:meth:`gitfree.Store.materialize`), and the store."""
    with _runtime.translated():
        target = _runtime.store_from(gitfree_conn_id, store)
        version = target.materialize(ref)
    log.info(
        "%s of %s no longer needs its source: its %d files are in the store", version.ref, target.url, version.nfiles
    )
    return version, target


def version_from_asset(asset: Asset, context: Mapping[str, Any] | None = None) -> str:
    """The ref (``images@7``) of the version an asset event names.

    The newest of the events that triggered this DAG run; in a run not triggered by the asset
    (a manual run, ``airflow dags test``), the asset's newest event, which needs the asset in the
    task's ``inlets``.

    Example:
        ```python
        from airflow.sdk import dag, task
        from gitfree.airflow import dataset_asset, version_from_asset

        images = dataset_asset("images")

        @dag(schedule=[images])
        def train():
            @task(inlets=[images])
            def which() -> str:
                return version_from_asset(images)   # e.g. "images@7"
            which()
        ```
    """
    context = _runtime.context_or_current(context)
    with _runtime.translated():
        ref, _ = _runtime.version_from_events(context, asset)
    return ref


def pull_dataset(
    ref: str | Asset,
    dest: str | os.PathLike[str],
    *,
    gitfree_conn_id: str | None = DEFAULT_CONN_ID,
    store: str | Store | None = None,
    overwrite: bool = False,
    paths: Sequence[str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Version:
    """Materialise a version at ``dest`` and return it.

    Inside a task the version is noted in the store as used in this DAG run, so that a commit later in
    the run records it as an input; a note that cannot be written (a read-only credential) is a warning.

    Args:
        ref: ``images@3``, ``images@prod``, ``images`` (newest) — or the dataset's asset, to pull the
            version its event names (see :func:`version_from_asset`).
        dest: any path; only objects missing from the worker cache are downloaded.
        overwrite: replace other data at ``dest``.
        paths: only these files or folders of the version.

    Example:
        ```python
        from airflow.sdk import task
        from gitfree.airflow import dataset_asset, pull_dataset

        @task(inlets=[dataset_asset("images")])
        def train():
            version = pull_dataset(dataset_asset("images"), "/tmp/images", overwrite=True)
            ...  # read /tmp/images
        ```
    """
    version, _ = pull_with_store(
        ref,
        dest,
        gitfree_conn_id=gitfree_conn_id,
        store=store,
        overwrite=overwrite,
        paths=paths,
        context=context,
    )
    return version


def pull_with_store(
    ref: str | Asset,
    dest: str | os.PathLike[str],
    *,
    gitfree_conn_id: str | None,
    store: str | Store | None,
    overwrite: bool,
    paths: Sequence[str] | None,
    context: Mapping[str, Any] | None,
) -> tuple[Version, Store]:
    """:func:`pull_dataset`, and the store it pulled from (the operators' XCom names its URL)."""
    context = _runtime.context_or_current(context)
    with _runtime.translated():
        event_store: str | None = None
        if isinstance(ref, Asset):
            ref, event_store = _runtime.version_from_events(context, ref)
        target = _runtime.store_from(gitfree_conn_id, store)
        _runtime.check_same_store(event_store, target, ref)
        version = target.show(ref)
        where = target.pull(version, Path(dest), overwrite=overwrite, paths=paths)
        _runtime.note_pull(context, target, version, log)
    log.info("%s of %s is at %s", version.ref, target.url, where)
    return version, target


def tag_version(
    ref: str,
    tag: str,
    *,
    move: bool = False,
    expect: int | None = None,
    require: Mapping[str, str] | Sequence[str] | None = None,
    message: str = "",
    gitfree_conn_id: str | None = DEFAULT_CONN_ID,
    store: str | Store | None = None,
    context: Mapping[str, Any] | None = None,
) -> Tag:
    """Point ``tag`` (``prod``) at a version; ``move=True`` moves an existing tag, ``expect=N`` only from N.

    With ``require`` (``{"accuracy": ">="}``, ``{"f1": ">= 0.9"}``; ``{}`` for no metric gate) it is a
    promotion (:meth:`gitfree.Store.promote`): the tag moves only if the version passes the gate and the
    dataset's stage order; a refusal fails the task without retrying, its message showing both values.
    The task is the author of the move in the tag's history, with ``message``. A write of the tag emits an
    event of :func:`~gitfree.airflow.tag_asset` if the task declares ``outlets=[tag_outlet()]``.

    Example:
        ```python
        from gitfree.airflow import tag_version
        tag_version("images@12", "prod", move=True)
        tag_version("models/churn@7", "production", require={"accuracy": ">="})
        ```
    """
    made, _ = tag_with_store(
        ref,
        tag,
        move=move,
        expect=expect,
        require=require,
        message=message,
        gitfree_conn_id=gitfree_conn_id,
        store=store,
        context=context,
    )
    return made


def tag_with_store(
    ref: str,
    tag: str,
    *,
    move: bool,
    expect: int | None,
    require: Mapping[str, str] | Sequence[str] | None,
    message: str,
    gitfree_conn_id: str | None,
    store: str | Store | None,
    context: Mapping[str, Any] | None,
) -> tuple[Tag, Store]:
    """:func:`tag_version`, and the store it wrote to."""
    context = _runtime.context_or_current(context)
    author = _runtime.author(context)
    with _runtime.translated():
        target = _runtime.store_from(gitfree_conn_id, store)
        if require is not None:
            made = target.promote(ref, tag, require=require, message=message, author=author)
        else:
            made = target.tag(ref, tag, move=move, expect=expect, message=message, author=author)
    if made.written:
        log.info("tagged %s as %s (was %s) %s", made.version_ref, made.ref, made.previous, made.gate)
        _runtime.emit_tag(context, made, target, log)
    else:
        log.info("%s already points at %s: nothing written, no asset event", made.ref, made.version_ref)
    return made, target
