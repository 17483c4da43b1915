"""What the tasks learn from the Prefect run they are in: provenance, lineage, artifacts and events."""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from gitfree.versioning import (
    Author,
    InputRef,
    IntegrityError,
    NotFoundError,
    Store,
    Version,
    format_size,
    stable_commit_id,
    version_event,
)

COMMITTED_EVENT = "gitfree.dataset.committed"

PULLED_RUNS_KEPT = 256
"""The most flow runs the lineage registry remembers in one process. A run is forgotten once it has
ended (a worker serving deployments runs flow runs for weeks, each of which would otherwise stay in it
for good); beyond this many runs that have not ended, the least recently used is forgotten too."""


@dataclass
class _Pulls:
    """What one flow run pulled so far, and its ``FlowRun`` (the engine sets its state: it tells when the run ended)."""

    refs: list[InputRef] = field(default_factory=list)
    flow_run: Any = None


_pulled: OrderedDict[str, _Pulls] = OrderedDict()
"""The lineage registry: per flow run id, the versions pulled in it, least recently used first."""
_pulled_lock = threading.Lock()


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


def _ended(pulls: _Pulls) -> bool:
    state = getattr(pulls.flow_run, "state", None)
    return state is not None and bool(state.is_final())


def record_pull(store: Store, version: Version) -> None:
    """Remember ``version`` as pulled in this flow run, and forget the runs that ended (then, beyond
    :data:`PULLED_RUNS_KEPT` runs, the least recently used)."""
    run = flow_run_id()
    if run is None:
        return
    flow_ctx, _ = _contexts()
    ref = InputRef(dataset=version.dataset, number=version.number, store=store.url)
    with _pulled_lock:
        for other in [key for key, pulls in _pulled.items() if key != run and _ended(pulls)]:
            del _pulled[other]
        pulls = _pulled.setdefault(run, _Pulls())
        _pulled.move_to_end(run)
        if flow_ctx is not None and flow_ctx.flow_run is not None:
            pulls.flow_run = flow_ctx.flow_run  # the run now executing under this id (a rerun: a new one)
        if ref not in pulls.refs:
            pulls.refs.append(ref)
        while len(_pulled) > max(PULLED_RUNS_KEPT, 1):
            _pulled.popitem(last=False)


def pulled_inputs(store: Store, dataset: str) -> list[InputRef]:
    """Versions pulled earlier in this flow run: the lineage of what it commits."""
    run = flow_run_id()
    if run is None:
        return []
    with _pulled_lock:
        pulls = _pulled.get(run)
        refs = list(pulls.refs) if pulls is not None else []
        if pulls is not None:
            _pulled.move_to_end(run)  # a run that commits is in use: the last to be forgotten
    return [
        ref.model_copy(update={"store": None if ref.store == store.url else ref.store})
        for ref in refs
        if not (ref.dataset == dataset and ref.store == store.url)
    ]


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
    create_table_artifact(
        key=artifact_key(version.dataset),
        table=[
            {
                "version": version.ref,
                "files": version.nfiles,
                "size": format_size(version.size),
                "changes": changes,
                "metrics": metrics_summary(store, version, parent, why),
                "message": version.message,
                "inputs": ", ".join(str(i) for i in version.inputs) or "-",
                "store": f"{store.url} (gitfree pull {version.ref} DEST)",
            }
        ],
        description=f"gitfree: {version.ref} of `{version.dataset}` in {store.url}",
    )
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
