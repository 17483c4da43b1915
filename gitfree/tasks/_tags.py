"""What the tasks tell Prefect about a write of a tag: the event ``gitfree.tag.moved``."""

from __future__ import annotations

import uuid

from gitfree.versioning import Store, Tag, tag_event

TAG_MOVED_EVENT = "gitfree.tag.moved"
_TAG_EVENTS = uuid.UUID("9d3b6f2e-4a71-4f0c-8e15-2c7a9b40d583")
"""The namespace of the ids of tag events: one id per write of a tag (its store, its ref and its ``seq``)."""


def resource_id(dataset: str, tag: str) -> str:
    """The Prefect resource of a tag, ``gitfree.tag.<dataset>@<tag>``: what a trigger matches."""
    return f"gitfree.tag.{dataset}@{tag}"


def publish_tag(store: Store, tag: Tag) -> None:
    """The event ``gitfree.tag.moved`` of a write of ``tag`` (a creation, move or promotion), about the
    resource ``gitfree.tag.<dataset>@<tag>``, with :func:`gitfree.versioning.tag_event` (``from`` and ``to``)
    as its payload. Its id is the write's, so a retried task that publishes again publishes the same event."""
    from prefect.events import emit_event

    emit_event(
        event=TAG_MOVED_EVENT,
        resource={
            "prefect.resource.id": resource_id(tag.dataset, tag.tag),
            "prefect.resource.name": tag.ref,
            "gitfree.dataset": tag.dataset,
            "gitfree.tag": tag.tag,
            "gitfree.store": store.url,
        },
        related=[{"prefect.resource.id": f"gitfree.dataset.{tag.dataset}", "prefect.resource.role": "dataset"}],
        payload=tag_event(tag, store.url),
        id=uuid.uuid5(_TAG_EVENTS, f"{store.url}/{tag.ref}/{tag.seq}"),
    )
