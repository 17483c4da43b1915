"""Promotion in real Prefect flows (a real Prefect server, SeaweedFS): the gate, the event ``gitfree.tag.moved``
with ``from``/``to``, the flow run as the author of the move, a refusal that fails the run without retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree
from on_prefect.prefect_helpers import wait_for
from prefect import flow

from gitfree import GateError, Store
from gitfree.flows import promote_model, stage_trigger
from gitfree.tasks import TAG_MOVED_EVENT, promote_version
from gitfree.testing import Faults, SeaweedFS
from gitfree.versioning import layout


def tag_events(dataset: str, tag: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[TAG_MOVED_EVENT]),
                resource=EventResourceFilter(id=[f"gitfree.tag.{dataset}@{tag}"]),
            ),
            limit=50,
        )
    return list(page.events)


@pytest.fixture
def models(
    make_store: Callable[..., Store],
    seaweedfs: SeaweedFS,
    monkeypatch: pytest.MonkeyPatch,
    dataset: str,
    tmp_path: Path,
) -> Store:
    """models/<dataset>@1..3 (accuracy 0.90, 0.93, 0.91); the environment reaches the server, so a flow can
    take the store as its URL."""
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    store = make_store("s3")
    for i, accuracy in enumerate([0.90, 0.93, 0.91], start=1):
        src = write_tree(tmp_path / f"m{i}", {"model.json": f"{i}".encode()})
        store.commit(f"models/{dataset}", src, metrics={"accuracy": accuracy})
    return store


def test_promote_model_gates_moves_and_emits_from_and_to(models: Store, dataset: str) -> None:
    model = f"models/{dataset}"
    first = promote_model(f"{model}@1", "production", store=models.url, require={"accuracy": ">="})
    assert (first.number, first.previous, first.written) == (1, None, True)
    second = promote_model(f"{model}@2", "production", store=models.url, require={"accuracy": ">="}, message="wk 2")
    assert (second.number, second.previous, second.seq) == (2, 1, 2)

    events = wait_for(lambda: (found := tag_events(model, "production")) and len(found) == 2 and found)
    payloads = sorted((e.payload for e in events), key=lambda p: p["seq"])
    assert [(p["from"], p["to"], p["ref"], p["action"]) for p in payloads] == [
        (None, 1, f"{model}@1", "created"),
        (1, 2, f"{model}@2", "moved"),
    ]
    assert payloads[1]["gate"] == f"accuracy 0.93 >= 0.9 of {model}@1 (production)"
    assert payloads[1]["message"] == "wk 2" and payloads[1]["store"] == models.url
    assert all(f"gitfree.dataset.{model}" in {r["prefect.resource.id"] for r in e.related} for e in events)

    [_, moved] = models.tag_history(model, "production")
    assert moved.author.orchestrator == "prefect"
    assert moved.author.pipeline == "gitfree-promote-model"
    assert moved.author.run_id and moved.author.task_id

    # Refused by the gate: the run fails at once (GateError is not transient: no retry), nothing moves or is emitted.
    with pytest.raises(GateError, match=f"accuracy 0.91 < 0.93 of {model}@2 \\(production\\)"):
        promote_model(f"{model}@3", "production", store=models.url, require={"accuracy": ">="})
    assert models.show(f"{model}@production").number == 2
    time.sleep(2)
    assert len(tag_events(model, "production")) == 2

    trigger = stage_trigger(model)
    assert trigger.expect == {TAG_MOVED_EVENT}
    match = trigger.match if isinstance(trigger.match, dict) else trigger.match.model_dump()
    assert match == {"prefect.resource.id": f"gitfree.tag.{model}@production"}


def test_a_promotion_raced_by_another_move_is_retried_and_judged_again(models: Store, dataset: str) -> None:
    """Another worker moves the stage between this task's judgment and its swap: the task's first try is
    refused (ConflictError, transient), Prefect retries it, and the retry judges the candidate against the new
    holder; one event per write of the tag."""
    model = f"models/{dataset}"
    models.tag(f"{model}@1", "staging")
    other = Store(models.url, settings=models.settings)

    @flow
    def release() -> int:
        retried = promote_version.with_options(retries=2, retry_delay_seconds=0)
        return retried(f"{model}@2", "staging", store=models, require={"accuracy": ">="}).number

    with Faults(models) as faults:
        faults.call(
            "get",
            layout.tag_key(model, "staging"),
            lambda _: other.tag(f"{model}@3", "staging", move=True),
            when="after",
            times=1,
        )
        assert release() == 2  # the retry compares 0.93 with @3's 0.91, and passes
    assert [(e.previous, e.number) for e in models.tag_history(model, "staging")] == [(None, 1), (1, 3), (3, 2)]
    events = wait_for(lambda: (found := tag_events(model, "staging")) and found)
    assert [e.payload["to"] for e in events] == [2]  # only the task's own write is its event
