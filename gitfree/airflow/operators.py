"""Operators: commit, pull and tag dataset versions as Airflow tasks.

Each returns (as its XCom) what the asset event of a version carries: ``ref``, ``dataset``,
``number``, ``store``, ``size``, ``nfiles``, ``md5``, ``version_id``, ``created_at``, ``message``.
The commit operator adds ``created`` (as :attr:`gitfree.Version.created`, and as the Prefect task's
result says it; ``new`` is the same, its earlier name): false when the data was unchanged, so no
version was made and no event emitted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowSkipException
from pydantic import JsonValue

from . import _runtime
from .assets import dataset_asset, dataset_of, dataset_outlet, tag_outlet, version_extra
from .functions import DEFAULT_CONN_ID, commit_with_store, materialize_with_store, pull_with_store, tag_with_store

__all__ = ["GitfreeCommitOperator", "GitfreeMaterializeOperator", "GitfreePullOperator", "GitfreeTagOperator"]


class GitfreeCommitOperator(BaseOperator):
    """Commit a file or directory as the next version of a dataset; a new version emits an asset event.

    The task's outlet is :func:`~gitfree.airflow.dataset_outlet` (``gitfree:<dataset>``): a new version
    emits an event of the asset ``gitfree://<dataset>`` whose ``extra`` names it, so DAGs scheduled
    on :func:`~gitfree.airflow.dataset_asset` run once per new version. Unchanged data makes no
    version and no event; the task succeeds (or, with ``skip_if_unchanged``, is skipped, and so
    are the tasks after it).

    Args:
        dataset: e.g. ``images`` or ``raw/sales`` (not templated: the outlet is known when the DAG is parsed).
        path: the file or directory to commit (templated).
        message, metadata, metrics, inputs: recorded with the version (templated); ``inputs`` are
            refs of the versions it was made from; a metric rendered as text is read as ``--metric``
            reads it (``"120000"`` is the integer 120000).
        force: make a version even when the data is unchanged.
        auto_inputs: add the versions of the store pulled earlier in the same DAG run (``GitfreePullOperator``,
            ``pull_dataset``, in any task) to ``inputs``; false: only ``inputs``.
        skip_if_unchanged: skip the task (and its downstream) when the data is unchanged.
        gitfree_conn_id: the store's connection (``None``: the ``GITFREE_*`` variables).
        store: a store URL overriding the connection's.
        by_reference: version the files where they are: ``path`` is a source URL (``s3://bucket/prefix/`` on the
            store's endpoint, or a folder every worker shares), nothing is uploaded, and an unchanged source makes
            no version and reads no object; the asset event's ``extra`` (and the XCom) add ``source``.

    Example:
        ```python
        from gitfree.airflow import GitfreeCommitOperator

        GitfreeCommitOperator(task_id="commit", dataset="images", path="/data/images", message="{{ ds }}")
        GitfreeCommitOperator(task_id="import", dataset="raw/images", path="s3://landing/images/{{ ds }}/",
                              by_reference=True)
        ```
    """

    template_fields: Sequence[str] = ("path", "message", "metadata", "metrics", "inputs", "store")
    ui_color = "#c9e4de"

    def __init__(
        self,
        *,
        dataset: str,
        path: str | os.PathLike[str],
        message: str = "",
        metadata: dict[str, JsonValue] | None = None,
        metrics: dict[str, float | str] | None = None,  # text: a template, rendered then read as a number
        inputs: list[str] | None = None,
        force: bool = False,
        skip_if_unchanged: bool = False,
        gitfree_conn_id: str | None = DEFAULT_CONN_ID,
        store: str | None = None,
        auto_inputs: bool = True,
        by_reference: bool = False,
        **kwargs: Any,
    ) -> None:
        with _runtime.translated():
            outlet = dataset_outlet(dataset)
        outlets = list(kwargs.pop("outlets", None) or [])
        super().__init__(outlets=[*outlets, outlet], **kwargs)
        self.dataset = dataset
        self.path = os.fspath(path)
        self.message = message
        self.metadata = metadata
        self.metrics = metrics
        self.inputs = inputs
        self.force = force
        self.skip_if_unchanged = skip_if_unchanged
        self.gitfree_conn_id = gitfree_conn_id
        self.store = store
        self.auto_inputs = auto_inputs
        self.by_reference = by_reference

    def execute(self, context: Any) -> dict[str, JsonValue]:
        version, target = commit_with_store(
            self.dataset,
            self.path,
            gitfree_conn_id=self.gitfree_conn_id,
            store=self.store,
            message=self.message,
            metadata=self.metadata,
            metrics=_runtime.rendered_metrics(self.metrics),
            inputs=self.inputs,
            force=self.force,
            context=context,
            auto_inputs=self.auto_inputs,
            by_reference=self.by_reference,
        )
        new = bool(version.created)
        if not new and self.skip_if_unchanged:
            raise AirflowSkipException(f"{self.dataset} is unchanged since {version.ref}: no new version")
        return {**version_extra(version, target.url), "created": new, "new": new}


class GitfreePullOperator(BaseOperator):
    """Materialise a dataset version at a path on the worker.

    Name the version with ``ref`` (``images@3``, ``images@prod``, ``images``) or with ``asset``
    (:func:`~gitfree.airflow.dataset_asset`), which pulls the version its event names: the newest
    event that triggered the run, else the asset's newest event (the asset is added to the
    task's inlets).

    Args:
        dest: where the version goes (templated).
        ref: the version (templated).
        asset: the dataset's asset, instead of ``ref``.
        overwrite: replace other data at ``dest``.
        paths: only these files or folders of the version (templated).
        gitfree_conn_id: the store's connection (``None``: the ``GITFREE_*`` variables).
        store: a store URL overriding the connection's.

    Example:
        ```python
        from gitfree.airflow import GitfreePullOperator, dataset_asset

        GitfreePullOperator(task_id="pull", asset=dataset_asset("images"), dest="/tmp/images", overwrite=True)
        ```
    """

    template_fields: Sequence[str] = ("ref", "dest", "paths", "store")
    ui_color = "#dbe7f0"

    def __init__(
        self,
        *,
        dest: str | os.PathLike[str],
        ref: str | None = None,
        asset: Asset | None = None,
        overwrite: bool = False,
        paths: list[str] | None = None,
        gitfree_conn_id: str | None = DEFAULT_CONN_ID,
        store: str | None = None,
        **kwargs: Any,
    ) -> None:
        if (ref is None) == (asset is None):
            raise ValueError("GitfreePullOperator needs exactly one of ref= (e.g. 'images@3') or asset=")
        inlets = list(kwargs.pop("inlets", None) or [])
        if asset is not None:
            with _runtime.translated():
                asset = dataset_asset(dataset_of(asset))
            inlets.append(asset)
        super().__init__(inlets=inlets, **kwargs)
        self.dest = os.fspath(dest)
        self.ref = ref
        self.asset = asset
        self.overwrite = overwrite
        self.paths = paths
        self.gitfree_conn_id = gitfree_conn_id
        self.store = store

    def execute(self, context: Any) -> dict[str, JsonValue]:
        version, target = pull_with_store(
            self.asset if self.asset is not None else self.ref or "",
            self.dest,
            gitfree_conn_id=self.gitfree_conn_id,
            store=self.store,
            overwrite=self.overwrite,
            paths=self.paths,
            context=context,
        )
        return {**version_extra(version, target.url), "dest": self.dest}


class GitfreeTagOperator(BaseOperator):
    """Point a tag (``prod``) at a version, or promote a version to a stage through a metric gate.

    Each write of the tag emits an event of :func:`~gitfree.airflow.tag_asset` (``gitfree-tag://<dataset>/<tag>``)
    through the outlet :func:`~gitfree.airflow.tag_outlet`, which the operator declares itself: a DAG with
    ``schedule=[tag_asset("models/churn", "production")]`` runs once per change of production, and reads the
    version from the event's ``extra["ref"]`` (also ``from``, ``to``, ``gate``). A tag already pointing there
    writes and emits nothing.

    Args:
        ref: the version, e.g. ``images@12`` or ``{{ ti.xcom_pull('commit')['ref'] }}`` (templated).
        tag: the tag or stage (templated).
        move: move the tag if it exists (else an existing tag fails the task).
        expect: with ``move``, only move it from this version number (compare-and-swap).
        require: a promotion's metric gate, e.g. ``{"accuracy": ">="}`` (at least the current holder's) or
            ``{"f1": ">= 0.9"}``; ``{}`` promotes with no metric gate. A promotion also follows the dataset's
            stage order, and is refused (the task fails without retrying) if the version does not pass.
        message: why, kept in the tag's history (templated).
        gitfree_conn_id: the store's connection (``None``: the ``GITFREE_*`` variables).
        store: a store URL overriding the connection's.

    Example:
        ```python
        from gitfree.airflow import GitfreeTagOperator

        GitfreeTagOperator(task_id="promote", ref="{{ ti.xcom_pull('commit')['ref'] }}", tag="production",
                           require={"accuracy": ">="}, message="nightly {{ ds }}")
        ```
    """

    template_fields: Sequence[str] = ("ref", "tag", "message", "store")
    ui_color = "#f0e6d2"

    def __init__(
        self,
        *,
        ref: str,
        tag: str,
        move: bool = False,
        expect: int | None = None,
        require: dict[str, str] | list[str] | None = None,
        message: str = "",
        gitfree_conn_id: str | None = DEFAULT_CONN_ID,
        store: str | None = None,
        **kwargs: Any,
    ) -> None:
        outlets = list(kwargs.pop("outlets", None) or [])
        super().__init__(outlets=[*outlets, tag_outlet()], **kwargs)
        self.ref = ref
        self.tag = tag
        self.move = move
        self.expect = expect
        self.require = require
        self.message = message
        self.gitfree_conn_id = gitfree_conn_id
        self.store = store

    def execute(self, context: Any) -> dict[str, JsonValue]:
        made, target = tag_with_store(
            self.ref,
            self.tag,
            move=self.move,
            expect=self.expect,
            require=self.require,
            message=self.message,
            gitfree_conn_id=self.gitfree_conn_id,
            store=self.store,
            context=context,
        )
        return {
            "ref": made.ref,
            "dataset": made.dataset,
            "tag": made.tag,
            "number": made.number,
            "previous": made.previous,
            "seq": made.seq,
            "written": bool(made.written),
            "gate": made.gate,
            "version": made.version_ref,
            "store": target.url,
        }


class GitfreeMaterializeOperator(BaseOperator):
    """Copy the files of a version by reference into its store, so that it no longer needs its source.

    After it, the version reads from the store alone (its source may change or go) and ``gitfree export`` gives a
    ``.dvc`` plain DVC can ``dvc pull``. A version already materialised, or not by reference, copies nothing.
    A source file that no longer holds what was committed fails the task without retrying (nothing of it is
    copied; a later run goes on from what was). The XCom is the version's, as the commit operator's, with
    ``materialized: true``.

    Args:
        ref: the version, e.g. ``raw/images@4`` or ``{{ ti.xcom_pull('import')['ref'] }}`` (templated).
        gitfree_conn_id: the store's connection (``None``: the ``GITFREE_*`` variables).
        store: a store URL overriding the connection's.

    Example:
        ```python
        from gitfree.airflow import GitfreeMaterializeOperator

        GitfreeMaterializeOperator(task_id="keep", ref="{{ ti.xcom_pull('import')['ref'] }}")
        ```
    """

    template_fields: Sequence[str] = ("ref", "store")
    ui_color = "#e4dcf0"

    def __init__(
        self,
        *,
        ref: str,
        gitfree_conn_id: str | None = DEFAULT_CONN_ID,
        store: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ref = ref
        self.gitfree_conn_id = gitfree_conn_id
        self.store = store

    def execute(self, context: Any) -> dict[str, JsonValue]:
        version, target = materialize_with_store(self.ref, gitfree_conn_id=self.gitfree_conn_id, store=self.store)
        return {**version_extra(version, target.url), "materialized": True}
