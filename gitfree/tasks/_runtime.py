"""What the tasks learn from the Prefect run they are in: provenance, lineage, artifacts and events."""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import quote, urlsplit

from gitfree.versioning import (
    Author,
    GitfreeError,
    InputRef,
    IntegrityError,
    NotFoundError,
    Store,
    Version,
    format_size,
    stable_commit_id,
    version_event,
)

logger = logging.getLogger("gitfree")

COMMITTED_EVENT = "gitfree.dataset.committed"

RUN_PREFIX = "prefect:"
"""The run of a flow run's notes in a store (``Store.note_use``): ``prefect:<flow run id>``."""

OTHER_STORES_KEPT = 8
"""The most stores a process remembers having pulled from, so that a commit to another store in the same
flow run also finds the notes there (docs/design.md, "Lineage inside orchestrator runs"): a bound by the
number of stores, never by the number of flow runs. Nothing of any run is kept in memory."""

_pulled_from: OrderedDict[str, Store] = OrderedDict()
"""Store URL -> the store this process last pulled from at that URL, least recently used first."""
_pulled_from_lock = threading.Lock()


def _contexts() -> tuple[Any, Any]:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get(), TaskRunContext.get()


def flow_run_id() -> str | None:
    flow_ctx, task_ctx = _contexts()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return str(flow_ctx.flow_run.id)
    if task_ctx is not None and task_ctx.task_run.flow_run_id is not None:
        return str(task_ctx.task_run.flow_run_id)
    return None


def author() -> Author:
    """This user and host, with the flow name, flow run id and task run id when there are any."""
    flow_ctx, task_ctx = _contexts()
    return Author.current(
        orchestrator="prefect",
        pipeline=flow_ctx.flow.name if flow_ctx is not None else None,
        run_id=flow_run_id(),
        task_id=str(task_ctx.task_run.id) if task_ctx is not None else None,
    )


def commit_id(dataset: str) -> uuid.UUID:
    """Stable across Prefect's retries of one task run, so a retry recognises its earlier attempt."""
    _, task_ctx = _contexts()
    if task_ctx is None:
        return uuid.uuid4()
    return stable_commit_id("prefect", str(task_ctx.task_run.id), dataset)


def run_key() -> str | None:
    """The run this flow run's notes are under (``prefect:<flow run id>``), or ``None`` outside a flow run."""
    run = flow_run_id()
    return f"{RUN_PREFIX}{run}" if run is not None else None


def note_pull(store: Store, version: Version) -> bool:
    """Note in ``store`` that ``version`` was pulled in this flow run, for a commit in the same run on any
    worker (one create-only PUT); false when it could not be noted (``Store.note_use`` warned)."""
    run = run_key()
    if run is None:
        return True
    _, task_ctx = _contexts()
    noted = store.note_use(run, version, task=str(task_ctx.task_run.id) if task_ctx is not None else None)
    with _pulled_from_lock:
        _pulled_from[store.url] = store
        _pulled_from.move_to_end(store.url)
        while len(_pulled_from) > max(OTHER_STORES_KEPT, 1):
            _pulled_from.popitem(last=False)
    return noted


def noted_inputs(store: Store, dataset: str) -> list[InputRef]:
    """The versions pulled earlier in this flow run, on any worker: the lineage of what it commits to ``dataset``.

    The notes in ``store`` (one LIST), and those in the other stores this process pulled from (one LIST
    each; their versions carry their store's URL). A version of ``dataset`` itself in ``store`` is left
    out: it is the new version's parent, not an input.
    """
    run = run_key()
    if run is None:
        return []
    refs = [ref for ref in store.used_in(run) if ref.dataset != dataset]
    with _pulled_from_lock:
        others = [other for url, other in _pulled_from.items() if url != store.url]
    for other in others:
        try:
            refs += [ref.model_copy(update={"store": other.url}) for ref in other.used_in(run)]
        except GitfreeError as exc:  # another store's lineage is not worth failing this commit
            # Forgotten, so that a store gone or unreachable costs one failed listing, not one per commit.
            with _pulled_from_lock:
                if _pulled_from.get(other.url) is other:
                    del _pulled_from[other.url]
            logger.warning(
                "could not read the versions this flow run pulled from %s (no longer looked at until pulled from "
                "again): %s",
                other.url,
                str(exc),  # the text: a record kept by a log handler must not keep this task's frames alive
            )
    return refs


def artifact_key(dataset: str) -> str:
    """Prefect artifact keys are lowercase letters, digits and dashes."""
    return "gitfree-" + re.sub(r"[^a-z0-9]+", "-", dataset).strip("-")


def publish(store: Store, version: Version) -> None:
    """A table artifact of the new version (stable key per dataset) and the ``committed`` event."""
    from prefect.artifacts import create_table_artifact
    from prefect.events import emit_event

    parent, why = _parent(store, version)
    if parent is not None:
        diff = store.diff(parent.ref, version.ref)
        changes = (
            f"+{len(diff.added)} added, -{len(diff.removed)} removed, ~{len(diff.modified)} modified vs {diff.old}"
        )
    else:
        changes = f"not compared: {why}" if why else "first version"
    row = {
        "version": version.ref,
        "files": version.nfiles,
        "size": format_size(version.size),
        "changes": changes,
        "metrics": metrics_summary(store, version, parent, why),
        "message": version.message,
        "inputs": ", ".join(str(i) for i in version.inputs) or "-",
        "store": f"{store.url} (gitfree pull {version.ref} DEST)",
    }
    description = f"gitfree: {version.ref} of `{version.dataset}` in {store.url}"
    page = ui_page(version)
    if page is not None:  # GITFREE_UI_URL: the version's page in the web view (gitfree ui)
        row["page"] = page
        description += f" · [{version.ref} in gitfree ui]({page})"
    create_table_artifact(key=artifact_key(version.dataset), table=[row], description=description)
    emit_event(
        event=COMMITTED_EVENT,
        resource={
            "prefect.resource.id": f"gitfree.dataset.{version.dataset}",
            "prefect.resource.name": version.dataset,
            "gitfree.dataset": version.dataset,
            "gitfree.store": store.url,
        },
        payload=version_event(version, store.url),
        id=version.id,  # one event per version, also when a retried task publishes again
    )


UI_URL = "GITFREE_UI_URL"
"""Where the web view (``gitfree ui``) of the store is served (``http://data.example:8765``): artifacts link there."""


def ui_page(version: Version) -> str | None:
    """The page of ``version`` in the web view at ``$GITFREE_UI_URL`` (``{url}/v/{dataset}@{n}``, its stable URL),
    or ``None`` when it is not set; one that is not an http(s) URL is warned about and not used."""
    base = os.environ.get(UI_URL, "").strip().rstrip("/")
    if not base:
        return None
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        logger.warning("%s=%r is not an http(s) URL of gitfree ui (with no password in it); not linked", UI_URL, base)
        return None
    return f"{base}/v/{quote(version.dataset, safe='/')}@{version.number}"


def _parent(store: Store, version: Version) -> tuple[Version | None, str | None]:
    """The parent of a new version to compare it with, or why there is none: ``(None, None)`` for a first
    version; ``(None, reason)`` when garbage collection dropped it (a GC may run between a commit and its
    artifact) or its record cannot be read."""
    if not version.parent:
        return None, None
    try:
        return store.show(f"{version.dataset}@{version.parent}"), None
    except (NotFoundError, IntegrityError) as exc:
        return None, str(exc).split("; ")[0]  # "ds@6 was dropped by garbage collection on ...", or the bad record


def metrics_summary(store: Store, version: Version, parent: Version | None, why: str | None = None) -> str:
    """The artifact's ``metrics`` cell: each metric of ``version`` with its change against ``parent``
    (``acc 0.89 → 0.91 (+0.02, +2.2%); rows 100 (unchanged) vs ds@6``), ``-`` for none; without a parent,
    the values and why there are no deltas (``why``, else a first version)."""
    if parent is None:
        values = "; ".join(f"{name} {value}" for name, value in sorted(version.metrics.items()))
        return f"{values} ({f'no deltas: {why}' if why else 'first version'})" if values else "-"
    compared = store.compare(parent, version)
    if not compared.metrics:
        return "-"
    return "; ".join(str(m) for m in compared.metrics) + f" vs {parent.ref}"


def in_task_run() -> bool:
    """Whether this code runs inside a Prefect task run."""
    return _contexts()[1] is not None


def run_logger() -> Any:
    """The run's logger (its lines show in Prefect's UI), or gitfree's outside a run."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logger
