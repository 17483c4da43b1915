"""Helpers for the Prefect tests: read events back from the server, wait for a condition."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any


def committed_events(dataset: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=["gitfree.dataset.committed"]),
                resource=EventResourceFilter(id=[f"gitfree.dataset.{dataset}"]),
            ),
            limit=50,
        )
    return list(page.events)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def read_artifacts(key: str) -> list[Any]:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, TaskRunFilter
    from prefect.client.schemas.sorting import ArtifactSort

    async def read() -> list[Any]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                flow_run_filter=FlowRunFilter(),
                task_run_filter=TaskRunFilter(),
                sort=ArtifactSort.CREATED_DESC,
                limit=10,
                offset=0,
            )
            return list(artifacts)

    return asyncio.run(read())


@contextlib.contextmanager
def prefect_server() -> Iterator[None]:
    """A temporary Prefect server, unless the process's (tests/conftest.py's ``prefect_harness``) already runs:
    a second harness inside the first would leave Prefect's event worker reporting to the first one.

    A test module asks for the ``prefect_harness`` fixture instead: the server started then serves every
    Prefect test of the process, where this one stops with the block it runs.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    running = SubprocessASGIServer._instances.get(None)
    if running is not None and running.running and PREFECT_API_URL.value() == running.api_url:
        yield
        return
    with prefect_test_harness(server_startup_timeout=120):
        yield
