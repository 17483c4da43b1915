"""DAGs of the promotion tests (tests/on_airflow/test_airflow_promotion.py): a promotion through a metric gate, and a
consumer that runs when the stage changes. Refs and messages come from the run's conf."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from gitfree.airflow import GitfreeTagOperator, tag_asset

PRODUCTION = tag_asset("demo/model", "production")


@dag(schedule=None, params={"ref": "", "message": ""})
def gitfree_promote() -> None:
    """Promote the version ``ref`` to production if it is at least as accurate as production's holder."""
    GitfreeTagOperator(
        task_id="promote",
        ref="{{ params.ref }}",
        tag="production",
        require={"accuracy": ">="},
        message="{{ params.message }}",
    )


@dag(schedule=[PRODUCTION])
def gitfree_on_production() -> None:
    """Runs when production changes: the version now in production is the newest event's ``ref``."""

    @task(inlets=[PRODUCTION])
    def which(**context: Any) -> str:
        triggering = context.get("triggering_asset_events") or {}
        events = list(triggering.get(PRODUCTION) or []) or list(
            context["inlet_events"][PRODUCTION].ascending(False).limit(1)
        )
        extra = events[-1].extra
        print(f"production changed: {extra['from_ref']} -> {extra['ref']} ({extra['gate']})")
        return str(extra["ref"])

    which()


gitfree_promote()
gitfree_on_production()
