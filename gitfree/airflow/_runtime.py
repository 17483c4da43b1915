"""What gitfree learns from the Airflow task it runs in, and the one place its errors become Airflow's."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from airflow.sdk import Asset, get_current_context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from gitfree.versioning import (
    Author,
    GitfreeError,
    InputError,
    InputRef,
    NotFoundError,
    Store,
    Tag,
    Version,
    is_transient,
    parse_metric,
    stable_commit_id,
    tag_event,
    version_event,
)

from .assets import dataset_asset, dataset_of, dataset_outlet, ref_from_extra, tag_asset, tag_outlet
from .hooks import GitfreeHook


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn a :class:`GitfreeError` into an Airflow exception with the same message.

    One a retry can fix (a lost connection, a server error, another writer or a garbage collection in
    the way) becomes ``AirflowException``, which uses the task's retries; any other (bad input, a missing
    version, an unsafe or corrupted record, wrong credentials: see
    :func:`gitfree.versioning.is_transient`) becomes ``AirflowFailException``: the task fails
    at once, its retries unused.
    """
    try:
        yield
    except GitfreeError as exc:
        kind = AirflowException if is_transient(exc) else AirflowFailException
        raise kind(f"gitfree: {exc}") from exc


def rendered_metrics(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Templated metrics as numbers: Jinja renders ``"{{ ti.xcom_pull(...) }}"`` as text (``"120000"``),
    which is read as ``--metric`` reads it (an integer stays an integer); other values pass as they are
    (the core refuses text, booleans and NaN)."""
    if metrics is None:
        return None
    parsed: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, str):
            try:
                value = parse_metric(value)
            except ValueError:
                raise AirflowFailException(
                    f"gitfree: the metric {name!r} rendered as {value[:40]!r}, which is not a number; template "
                    "a number (ASCII digits, e.g. 120000 or 0.91)"
                ) from None
            except GitfreeError as exc:
                raise AirflowFailException(f"gitfree: the metric {name!r}: {exc}") from exc
        parsed[name] = value
    return parsed


def context_or_current(context: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The task's context: the one given, else the running task's, else ``None`` (outside a task)."""
    if context is not None:
        return context
    try:
        current: Mapping[str, Any] = get_current_context()
    except RuntimeError:  # not inside a running task
        return None
    return current


def store_from(gitfree_conn_id: str | None, store: str | Store | None) -> Store:
    if isinstance(store, Store):
        return store
    return GitfreeHook(gitfree_conn_id, store=store).get_store()


def _task_label(ti: Any) -> str:
    map_index = getattr(ti, "map_index", -1)
    return f"{ti.task_id}[{map_index}]" if map_index is not None and map_index >= 0 else str(ti.task_id)


def author(context: Mapping[str, Any] | None) -> Author:
    """This user and host, with the DAG id, run id and task id (``task[3]`` when mapped) in a task."""
    if context is None:
        return Author.current()
    ti = context["ti"]
    made = Author.current(orchestrator="airflow", pipeline=ti.dag_id, run_id=ti.run_id, task_id=_task_label(ti))
    hostname = getattr(ti, "hostname", None)
    return made.model_copy(update={"host": hostname}) if hostname else made


def commit_id(context: Mapping[str, Any] | None, dataset: str) -> uuid.UUID:
    """Stable across the tries of one task instance, so a retry recognises the version its earlier try made."""
    if context is None:
        return uuid.uuid4()
    ti = context["ti"]
    return stable_commit_id("airflow", str(ti.dag_id), str(ti.run_id), _task_label(ti), dataset)


def run_key(context: Mapping[str, Any] | None) -> str | None:
    """The run a DAG run's notes are under in a store: ``airflow:<dag id>:<run id>`` (``None`` outside a task)."""
    if context is None:
        return None
    ti = context["ti"]
    return f"airflow:{ti.dag_id}:{ti.run_id}"


def note_pull(context: Mapping[str, Any] | None, store: Store, version: Version, log: Any) -> None:
    """Note in ``store`` that this DAG run pulled ``version`` (one create-only PUT), so that a commit later in
    the run, in any task and on any worker, records it as an input; a note that cannot be written is a warning."""
    run = run_key(context)
    if run is None or context is None:
        return
    if not store.note_use(run, version, task=_task_label(context["ti"])):
        log.warning(
            "pulled %s, but could not note it as used in this DAG run (see gitfree's warning): a commit in this "
            "run will not record it as an input unless it is passed in inputs=",
            version.ref,
        )


def noted_inputs(context: Mapping[str, Any] | None, store: Store, dataset: str) -> list[InputRef]:
    """The versions of ``store`` pulled earlier in this DAG run (one LIST): the lineage of what it commits to
    ``dataset``. A version of ``dataset`` itself is its parent, not an input, and is left out."""
    run = run_key(context)
    if run is None:
        return []
    return [ref for ref in store.used_in(run) if ref.dataset != dataset]


def try_number(context: Mapping[str, Any] | None) -> int | None:
    if context is None:
        return None
    value = getattr(context["ti"], "try_number", None)
    return int(value) if value is not None else None


def emit(context: Mapping[str, Any] | None, version: Version, store: Store, log: Any) -> bool:
    """Attach the new version to the asset event of the task's ``dataset_outlet`` alias; false if it has none."""
    if context is None:
        return False
    alias = dataset_outlet(version.dataset)
    if alias not in (context["ti"].task.outlets or []):
        log.warning(
            "%s is a new version, but this task has no outlet for it, so no asset event is emitted: add "
            "outlets=[gitfree.airflow.dataset_outlet(%r)] to the task",
            version.ref,
            version.dataset,
        )
        return False
    extra = version_event(version, store.url)
    tries = try_number(context)
    if tries is not None:
        extra["try_number"] = tries
    asset = dataset_asset(version.dataset)
    context["outlet_events"][alias].add(asset, extra=extra)
    log.info("asset event of %s: %s (%s)", asset.uri, version.ref, store.url)
    return True


def version_from_events(context: Mapping[str, Any] | None, asset: Asset) -> tuple[str, str | None]:
    """The version (ref and store URL) an asset event names: the newest event that triggered this run,
    else the newest event of the asset (the task must list it in ``inlets``)."""
    uri = asset.uri
    dataset = dataset_of(asset)
    if context is None:
        raise InputError(f"the version of {uri} comes from its asset events, which only a running Airflow task has")
    triggering = context.get("triggering_asset_events")
    events = [event.extra for event in (triggering.get(asset) or ())] if triggering else []
    if not events:
        if asset not in (context["ti"].task.inlets or []):
            raise InputError(f"declare {uri} in the task's inlets=[...] to read its asset events")
        events = [event.extra for event in context["inlet_events"][asset].ascending(False).limit(1)]
    if not events:
        raise NotFoundError(
            f"{uri} has no asset event yet: no task has committed a new version of {dataset!r} through "
            "gitfree.airflow; pass ref= to name a version"
        )
    newest = max(events, key=lambda extra: int(ref_from_extra(extra, uri).rpartition("@")[2]))
    store = newest.get("store")
    return ref_from_extra(newest, uri), store if isinstance(store, str) else None


def check_same_store(event_store: str | None, store: Store, ref: str) -> None:
    """A version named by an event must be pulled from the store the event names."""
    if event_store is not None and event_store != store.url:
        raise InputError(
            f"the asset event of {ref} names the store {event_store}, but this task's connection reaches {store.url}; "
            "use a connection to that store"
        )


def emit_tag(context: Mapping[str, Any] | None, tag: Tag, store: Store, log: Any) -> bool:
    """Attach the write of ``tag`` to the asset event of the task's ``tag_outlet`` alias; false if it has none."""
    if context is None:
        return False
    alias = tag_outlet()
    if alias not in (context["ti"].task.outlets or []):
        log.warning(
            "%s moved, but this task has no outlet for tags, so no asset event is emitted: add "
            "outlets=[gitfree.airflow.tag_outlet()] to the task",
            tag.ref,
        )
        return False
    extra = tag_event(tag, store.url)
    tries = try_number(context)
    if tries is not None:
        extra["try_number"] = tries
    asset = tag_asset(tag.dataset, tag.tag)
    context["outlet_events"][alias].add(asset, extra=extra)
    log.info("asset event of %s: %s -> %s (%s)", asset.uri, extra["from"], extra["to"], store.url)
    return True
