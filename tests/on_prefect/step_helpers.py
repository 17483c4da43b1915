"""Helpers for the tests of versioned steps in Prefect: count how often step bodies run (in a file, so that
every process counts in one place), and read back what a flow run's task runs ended in and published."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

from on_prefect.prefect_helpers import committed_events

from gitfree import tasks
from gitfree.tasks import StepTask

EXAMPLE_SALES = Path(__file__).resolve().parents[2] / "examples" / "sales"


def counting(task: StepTask, counter: Path, **options: Any) -> StepTask:
    """The same step task (same output, inputs, code fingerprint, hence the same step keys) whose body first
    appends its name to ``counter``; ``options`` are Prefect task options (``retries``...)."""
    body = task.step.fn

    @functools.wraps(body)
    def counted(**kwargs: Any) -> Any:
        with counter.open("a", encoding="utf-8") as f:
            f.write(f"{body.__name__}\n")
        return body(**kwargs)

    core = task.step
    made = tasks.step(
        core.output, core.inputs, paths=core.paths, code_version=core.code_version, name=task.name, **options
    )(counted)
    assert made.step.code == core.code, "the counting step must have the same key as the step it counts"
    return made


def count_pipeline_bodies(counter: Path) -> None:
    """Make the example pipeline's steps count their body runs in ``counter`` (for this process)."""
    from gitfree.flows import pipeline

    pipeline.featurize = counting(pipeline.featurize, counter)
    pipeline.train = counting(pipeline.train, counter)


def body_runs(counter: Path) -> Counter[str]:
    return Counter(counter.read_text(encoding="utf-8").split()) if counter.exists() else Counter()


def task_states(flow_run_id: Any) -> dict[str, tuple[str, str | None]]:
    """Each task run of the flow run by its task's name: its final state's name and message."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    found: dict[str, tuple[str, str | None]] = {}
    for run in runs:
        assert run.state is not None
        found[run.name.rsplit("-", 1)[0]] = (str(run.state.name), run.state.message)
    return found


def artifact_keys(flow_run_id: Any) -> list[str]:
    """The keys of the artifacts the flow run's tasks created."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
            return sorted(a.key or "" for a in found)

    return asyncio.run(read())


def committed(dataset: str, store_url: str) -> list[int]:
    """The version numbers of the ``gitfree.dataset.committed`` events about ``dataset`` of that store."""
    return sorted(e.payload["number"] for e in committed_events(dataset) if e.payload["store"] == store_url)


def pipeline_worker(source: str, counter: str, ready: str, go: str) -> None:
    """A worker process of the race test: count body runs, say it is ready, wait for the go, run the pipeline
    once and print its versions and its flow run id as JSON (``python -c`` calls this)."""
    import json
    import time

    count_pipeline_bodies(Path(counter))
    from gitfree.flows.pipeline import sales_pipeline

    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.01)
    state = sales_pipeline(source, return_state=True)
    versions = state.result()
    print(
        json.dumps(
            {
                "run": str(state.state_details.flow_run_id),
                "versions": {name: [v.ref, v.created] for name, v in versions.items()},
            }
        )
    )


def sleepy(raw: Path, out: Path, part: int = 0) -> None:
    """A body that says it started (``$GITFREE_TEST_STARTED-<part>``), then sleeps ``$GITFREE_TEST_SLEEP``
    seconds: the body of a worker about to be cancelled or killed."""
    import os
    import time

    marker = os.environ.get("GITFREE_TEST_STARTED")
    if marker:
        Path(f"{marker}-{part}").touch()
    time.sleep(float(os.environ.get("GITFREE_TEST_SLEEP", "0")))
    (out / "part").write_text(str(part), encoding="utf-8")


def sleepy_step(output: str, raw: str) -> StepTask:
    return tasks.step(output, inputs={"raw": raw})(sleepy)


def doomed_worker(output: str, raw: str, parts: list[int]) -> None:
    """A flow run of ``sleepy`` in this process: one part called in the flow's own thread, several submitted
    to threads; the test cancels (SIGTERM) or kills (SIGKILL) it mid-body."""
    from prefect import flow

    made = sleepy_step(output, raw)

    @flow
    def doomed() -> None:
        if len(parts) == 1:
            made(part=parts[0])
        else:
            for future in [made.submit(part=part) for part in parts]:
                future.result()

    doomed()
