"""The Airflow assets of gitfree datasets, and what their events carry.

A dataset ``images`` is the asset ``gitfree://images`` (``raw/sales`` is ``gitfree://raw/sales``):
the same URL names the newest version for gitfree's fsspec filesystem. A commit task does not
declare that asset directly among its outlets, because Airflow then records an event each time
the task succeeds; it declares the alias ``gitfree:images`` (:func:`dataset_outlet`) and
attaches an event to the asset only when it made a new version. An unchanged dataset makes no
event, so a DAG with ``schedule=[dataset_asset("images")]`` runs once per new version.

Each event's ``extra`` is :func:`version_extra` (:func:`gitfree.versioning.version_event`, the payload
of the Prefect event too): ``ref``, ``dataset``, ``number``, ``store``, ``size``, ``nfiles``, ``md5``,
``version_id``, ``created_at`` and ``message``.

A tag is an asset too: ``prod`` of ``models/churn`` is ``gitfree-tag://models/churn/prod`` (:func:`tag_asset`;
the last segment is the tag, since a tag has no ``/``). A task that moves a tag declares the alias
``gitfree:tags`` (:func:`tag_outlet`; :class:`~gitfree.airflow.GitfreeTagOperator` does so itself) and attaches an
event to the tag's asset each time it writes the tag, so a DAG with ``schedule=[tag_asset("models/churn",
"production")]`` runs once per change of production. That event's ``extra`` is
:func:`gitfree.versioning.tag_event`: ``ref`` (the version now tagged), ``from``, ``to``, ``seq``, ``gate``...
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset, AssetAlias
from pydantic import JsonValue

from gitfree.versioning import InputError, Version, parse_ref, validate_dataset_name, validate_tag_name, version_event

__all__ = [
    "SCHEME",
    "TAG_SCHEME",
    "dataset_asset",
    "dataset_of",
    "dataset_outlet",
    "tag_asset",
    "tag_outlet",
    "version_extra",
]

SCHEME = "gitfree"
TAG_SCHEME = "gitfree-tag"
_ALIAS_PREFIX = "gitfree:"
_TAG_ALIAS = "gitfree:tags"


def dataset_asset(dataset: str) -> Asset:
    """The asset of a dataset, ``gitfree://<dataset>``: schedule consumers on it, read its events.

    Example:
        ```python
        from airflow.sdk import dag
        from gitfree.airflow import dataset_asset

        @dag(schedule=[dataset_asset("images")])   # runs after each new version of images
        def train(): ...
        ```
    """
    uri = f"{SCHEME}://{validate_dataset_name(dataset)}"
    return Asset(uri=uri, name=uri)


def dataset_outlet(dataset: str) -> AssetAlias:
    """What a task that commits ``dataset`` declares in ``outlets=``: the alias ``gitfree:<dataset>``.

    :func:`~gitfree.airflow.commit_dataset` attaches an event for :func:`dataset_asset` to it
    when, and only when, it makes a new version.

    Example:
        ```python
        from airflow.sdk import task
        from gitfree.airflow import commit_dataset, dataset_outlet

        @task(outlets=[dataset_outlet("images")])
        def build():
            ...  # write /tmp/images
            commit_dataset("images", "/tmp/images")
        ```
    """
    return AssetAlias(name=_ALIAS_PREFIX + validate_dataset_name(dataset))


def dataset_of(asset: Asset | AssetAlias | str) -> str:
    """The dataset an asset (``gitfree://images``), an outlet alias (``gitfree:images``) or a URI names.

    Raises:
        InputError: not a gitfree asset.
    """
    if isinstance(asset, AssetAlias):
        if asset.name.startswith(_ALIAS_PREFIX):
            return validate_dataset_name(asset.name[len(_ALIAS_PREFIX) :])
        raise InputError(
            f"the asset alias {asset.name!r} is not a gitfree outlet; use gitfree.airflow.dataset_outlet()"
        )
    uri = asset.uri if isinstance(asset, Asset) else asset
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != SCHEME:
        raise InputError(
            f"the asset {uri!r} is not a gitfree dataset: use gitfree.airflow.dataset_asset('<dataset>'), "
            "whose URI is gitfree://<dataset>"
        )
    return validate_dataset_name((parts.netloc + parts.path).rstrip("/"))


def version_extra(version: Version, store_url: str) -> dict[str, JsonValue]:
    """What an asset event (and a gitfree operator's XCom) says about a version:
    :func:`gitfree.versioning.version_event`."""
    return version_event(version, store_url)


def ref_from_extra(extra: Mapping[str, Any], asset_uri: str) -> str:
    """The exact ref (``images@7``) an asset event names, checked against the asset it belongs to."""
    ref = extra.get("ref")
    if not isinstance(ref, str):
        raise InputError(
            f"an event of {asset_uri} has no version in its extra (was it emitted by something other than "
            "gitfree.airflow?); pass ref= to say which version to use"
        )
    parsed = parse_ref(ref)
    if parsed.number is None or parsed.dataset != dataset_of(asset_uri):
        raise InputError(f"an event of {asset_uri} names {ref!r}, which is not a version of that dataset")
    return ref


def tag_asset(dataset: str, tag: str) -> Asset:
    """The asset of a tag, ``gitfree-tag://<dataset>/<tag>``: schedule a DAG on it to run when the tag changes.

    Example:
        ```python
        from airflow.sdk import dag
        from gitfree.airflow import tag_asset

        @dag(schedule=[tag_asset("models/churn", "production")])   # runs after each promotion to production
        def deploy(): ...
        ```
    """
    uri = f"{TAG_SCHEME}://{validate_dataset_name(dataset)}/{validate_tag_name(tag)}"
    return Asset(uri=uri, name=uri)


def tag_outlet() -> AssetAlias:
    """What a task that moves tags declares in ``outlets=``: the alias ``gitfree:tags``, to which each write of
    a tag attaches an event of that tag's :func:`tag_asset` (the tag need not be known when the DAG is parsed)."""
    return AssetAlias(name=_TAG_ALIAS)
