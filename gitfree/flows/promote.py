"""A ready-made Prefect flow that promotes a model version through a metric gate, and the trigger of a
deployment that should run whenever a stage changes (``production`` got a new version)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from gitfree.tasks import TAG_MOVED_EVENT, GitfreeStore, promote_version, resolve_store
from gitfree.versioning import Tag

__all__ = ["promote_model", "stage_trigger"]


@flow(name="gitfree-promote-model", log_prints=True)
def promote_model(
    ref: str,
    stage: str = "production",
    store: str | GitfreeStore | None = None,
    require: dict[str, str] | list[str] | None = None,
    message: str = "",
) -> Tag:
    """Promote ``ref`` (``models/churn@7``) to ``stage`` if it passes the metric gate ``require``.

    ``require={"accuracy": ">="}`` promotes only a version at least as accurate as the stage's current
    holder (``{"f1": ">= 0.9"}``: an absolute bound); with a stage order set on the dataset
    (``gitfree stages models/churn dev staging production``) the version must hold the stage before.
    A promotion emits ``gitfree.tag.moved`` (payload ``from``, ``to``, ``ref``, ``gate``...); a refused one
    fails the flow run with ``GateError``, whose message shows both values. Run it from a shell with
    ``prefect deployment run``, or as the last step of a training flow::

        promote_model("models/churn@7", "production", require={"accuracy": ">="})
    """
    made = promote_version(ref, stage, store=resolve_store(store), require=require, message=message)
    logger = get_run_logger()
    if made.written:
        was = f"{made.dataset}@{made.previous}" if made.previous is not None else "no version"
        logger.info("%s is now %s (was %s); checked: %s", made.ref, made.version_ref, was, made.gate or "-")
    else:
        logger.info("%s already is %s", made.ref, made.version_ref)
    return made


def stage_trigger(dataset: str, stage: str = "production") -> DeploymentEventTrigger:
    """ "When ``stage`` of ``dataset`` changes, run the deployment" — with the version now in the stage as ``ref``.

    Example:
        ```python
        serve_model.to_deployment(name="serve-churn", triggers=[stage_trigger("models/churn", "production")])
        ```
    """
    return DeploymentEventTrigger(
        expect={TAG_MOVED_EVENT},
        match={"prefect.resource.id": f"gitfree.tag.{dataset}@{stage}"},
        parameters={"ref": "{{ event.payload.ref }}", "store": "{{ event.payload.store }}"},
    )
