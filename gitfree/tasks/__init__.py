"""Prefect tasks and the ``GitfreeStore`` block (needs the ``prefect`` extra)."""

from ._runtime import COMMITTED_EVENT, artifact_key
from ._tags import TAG_MOVED_EVENT
from .blocks import GitfreeStore
from .steps import StepTask, step
from .tasks import (
    commit_dataset,
    diff_versions,
    list_versions,
    promote_version,
    pull_dataset,
    resolve_store,
    retry_if_transient,
    tag_version,
)

__all__ = [
    "COMMITTED_EVENT",
    "TAG_MOVED_EVENT",
    "GitfreeStore",
    "StepTask",
    "artifact_key",
    "commit_dataset",
    "diff_versions",
    "list_versions",
    "promote_version",
    "pull_dataset",
    "resolve_store",
    "retry_if_transient",
    "step",
    "tag_version",
]
