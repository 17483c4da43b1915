"""Airflow operators, TaskFlow helpers, a hook and assets over gitfree (the ``airflow`` extra).

::

    GitfreeCommitOperator   commit a path (or, by_reference=True, a source URL) as the next version; a new version
                            is an event of gitfree://<dataset>
    GitfreePullOperator     materialise a version (named by a ref, or by the asset event that triggered the run)
    GitfreeTagOperator      point a tag at a version, or promote one through a metric gate (require=)
    GitfreeMaterializeOperator  copy a version by reference (GitfreeCommitOperator(by_reference=True)) into the store
    commit_dataset, pull_dataset, tag_version, version_from_asset    the same from inside any task
    step(output, inputs)        a versioned step as a TaskFlow task: its body runs only when what it reads changed
    run_step(featurize, ...)    a gitfree.step inside any task: a new version only is an event of gitfree://<output>
    dataset_asset("images")     the asset gitfree://images: schedule consumers on it
    dataset_outlet("images")    what a committing @task declares in outlets=
    tag_asset("models/churn", "production")     the asset gitfree-tag://models/churn/production: runs on each move
    tag_outlet()                what a @task that moves tags declares in outlets=
    GitfreeHook             a Store from an Airflow connection (conn type "gitfree", or "aws")

Imports neither prefect nor :mod:`gitfree.tasks`: Airflow and Prefect do not share an environment.
The names are imported on first use, so that Airflow can read :func:`get_provider_info` while it
is still starting (its provider discovery must not import ``airflow.sdk``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .provider import get_provider_info

if TYPE_CHECKING:
    from .assets import dataset_asset, dataset_of, dataset_outlet, tag_asset, tag_outlet, version_extra
    from .functions import commit_dataset, pull_dataset, tag_version, version_from_asset
    from .hooks import GitfreeHook
    from .operators import GitfreeCommitOperator, GitfreeMaterializeOperator, GitfreePullOperator, GitfreeTagOperator
    from .steps import run_step, step

__all__ = [
    "GitfreeCommitOperator",
    "GitfreeHook",
    "GitfreeMaterializeOperator",
    "GitfreePullOperator",
    "GitfreeTagOperator",
    "commit_dataset",
    "dataset_asset",
    "dataset_of",
    "dataset_outlet",
    "get_provider_info",
    "pull_dataset",
    "run_step",
    "step",
    "tag_asset",
    "tag_outlet",
    "tag_version",
    "version_extra",
    "version_from_asset",
]

_MODULES = {
    "GitfreeCommitOperator": "operators",
    "GitfreeMaterializeOperator": "operators",
    "GitfreePullOperator": "operators",
    "GitfreeTagOperator": "operators",
    "GitfreeHook": "hooks",
    "commit_dataset": "functions",
    "pull_dataset": "functions",
    "tag_version": "functions",
    "version_from_asset": "functions",
    "run_step": "steps",
    "step": "steps",
    "dataset_asset": "assets",
    "dataset_of": "assets",
    "dataset_outlet": "assets",
    "tag_asset": "assets",
    "tag_outlet": "assets",
    "version_extra": "assets",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
