"""The Airflow provider entry point (``apache_airflow_provider``): what ``airflow providers list`` shows.

It registers the ``gitfree`` connection type (:class:`~gitfree.airflow.GitfreeHook`) and the
``gitfree`` asset URI scheme, whose handler rejects a URI that does not name a dataset (so
``Asset("gitfree://Images")`` fails when its DAG is parsed).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from gitfree.versioning import InputError, validate_dataset_name, validate_tag_name

__all__ = ["get_provider_info", "normalize_tag_uri", "normalize_uri"]


def get_provider_info() -> dict[str, Any]:
    """The provider's description, in the shape of Airflow's ``provider_info.schema.json``."""
    from gitfree import __version__

    return {
        "package-name": "gitfree",
        "name": "gitfree",
        "description": "Versioned datasets on S3, Azure Blob or GCS with DVC's data format and no git: commit, pull "
        "and tag dataset versions from tasks; a new version is an asset event.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "gitfree",
                "external-doc-url": "https://github.com/gitfree/gitfree/blob/main/docs/airflow.md",
                "tags": ["software"],
            }
        ],
        "operators": [{"integration-name": "gitfree", "python-modules": ["gitfree.airflow.operators"]}],
        "hooks": [{"integration-name": "gitfree", "python-modules": ["gitfree.airflow.hooks"]}],
        "connection-types": [
            {
                "connection-type": "gitfree",
                "hook-class-name": "gitfree.airflow.hooks.GitfreeHook",
                "hook-name": "gitfree",
            }
        ],
        "asset-uris": [
            {"schemes": ["gitfree"], "handler": "gitfree.airflow.provider.normalize_uri"},
            {"schemes": ["gitfree-tag"], "handler": "gitfree.airflow.provider.normalize_tag_uri"},
        ],
    }


def normalize_uri(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    """Airflow's URI handler for the ``gitfree`` scheme (registered by the provider): the rest must be a dataset name.

    So that ``Asset("gitfree://Images")`` fails when the DAG is parsed, not when a version is committed.
    """
    if parts.path == "/":  # Airflow turns gitfree://images into gitfree://images/; a dataset has no trailing slash
        parts = parts._replace(path="")
    name = parts.netloc + parts.path
    if parts.query or "@" in name:
        raise ValueError(
            f"{urllib.parse.urlunsplit(parts)!r} is not a gitfree asset URI: it names a dataset, "
            "gitfree://<dataset> (e.g. gitfree://raw/sales), with no version, tag or query"
        )
    try:
        validate_dataset_name(name)
    except InputError as exc:
        raise ValueError(f"{urllib.parse.urlunsplit(parts)!r} is not a gitfree asset URI: {exc}") from None
    return parts


def normalize_tag_uri(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    """Airflow's URI handler for the ``gitfree-tag`` scheme: ``gitfree-tag://<dataset>/<tag>`` (the last segment
    is the tag), so that a malformed tag asset fails when its DAG is parsed."""
    name = (parts.netloc + parts.path).rstrip("/")
    dataset, _, tag = name.rpartition("/")
    where = urllib.parse.urlunsplit(parts)
    if parts.query or not dataset:
        raise ValueError(
            f"{where!r} is not a gitfree tag asset URI: it is gitfree-tag://<dataset>/<tag> (e.g. "
            "gitfree-tag://models/churn/production), with no query"
        )
    try:
        validate_dataset_name(dataset)
        validate_tag_name(tag)
    except InputError as exc:
        raise ValueError(f"{where!r} is not a gitfree tag asset URI: {exc}") from None
    return parts._replace(path=parts.path.rstrip("/"))
