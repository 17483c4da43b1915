"""DAGs of versioned steps that tests/on_airflow/test_airflow_steps.py attacks with ``airflow dags test``.

Each step body appends its name to ``<params.counts>/<name>``, so a test counts the body runs across tries
and tasks. ``params.raw`` is the input version (a ref); both come from the run's conf.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

from airflow.sdk import dag, task

from gitfree.airflow import GitfreeHook, dataset_asset, dataset_outlet, run_step, step
from gitfree.testing import Faults
from gitfree.versioning import step as plain_step


def _count(counts: str, name: str) -> int:
    """Note one run of the body ``name``; the number of runs before this one."""
    path = Path(counts) / name
    before = len(path.read_text().splitlines()) if path.exists() else 0
    with path.open("a") as f:
        f.write("ran\n")
    return before


def _copy(raw: Path, out: Path) -> None:
    for path in sorted(raw.rglob("*")):
        if path.is_file():
            (out / path.name).write_bytes(path.read_bytes())


@step(output="demo/step-flaky", inputs={"raw": None}, retries=1, retry_delay=timedelta(seconds=0))
def flaky(raw: Path, out: Path, counts: str) -> None:
    """Fails its first run: the retry runs the body again and makes the one version."""
    if _count(counts, "flaky") == 0:
        raise RuntimeError("flaky fails its first run")
    _copy(raw, out)


@plain_step(output="demo/step-noted", inputs={"raw": None})
def noted(raw: Path, out: Path, counts: str) -> None:
    _count(counts, "noted")
    _copy(raw, out)


@step(output="demo/step-mapped", inputs={"raw": None})
def mapped(raw: Path, out: Path, counts: str, label: str = "same") -> None:
    _count(counts, "mapped")
    _copy(raw, out)


@plain_step(output="demo/step-plain", inputs={"raw": None})
def plain(raw: Path, out: Path, counts: str) -> None:
    _count(counts, "plain")
    _copy(raw, out)


@plain_step(output="demo/step-declared", inputs={"raw": None})
def declared(raw: Path, out: Path, counts: str) -> None:
    _count(counts, "declared")
    _copy(raw, out)


@step(output="demo/step-race", inputs={"raw": None})
def slow(raw: Path, out: Path, gate: str) -> None:
    """Says it started, then waits (at most 120 s) for the file ``gate``: another run meanwhile waits for it."""
    Path(gate + ".started").write_text("")
    deadline = time.monotonic() + 120
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    _count(str(Path(gate).parent), "slow")
    _copy(raw, out)


@dag(schedule=None, params={"raw": "", "counts": "", "gate": ""})
def gitfree_step_attacks() -> None:
    """A step whose body fails once (retries=1); a step whose first try dies after its version and its note
    but before its asset event; one step mapped three times over the same inputs; a plain gitfree.step; a
    task declaring its step's asset itself; and the slow step of gitfree_step_race, which that DAG races."""
    flaky(raw="{{ params.raw }}", counts="{{ params.counts }}")
    slow(raw="{{ params.raw }}", gate="{{ params.gate }}")

    @task(outlets=[dataset_outlet("demo/step-noted")], retries=1, retry_delay=timedelta(seconds=0))
    def dies_after_note(**context: object) -> str:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        store = GitfreeHook().get_store()
        if context["ti"].try_number == 1:  # type: ignore[attr-defined]
            with Faults(store) as faults:  # the task dies once the step's note is written, before its event
                faults.fail("create", re.compile(r"^steps/.+@\d+\.json$"), when="after", error=RuntimeError("died"))
                run_step(noted, raw=params["raw"], counts=params["counts"], store=store)
        return run_step(noted, raw=params["raw"], counts=params["counts"], store=store).line

    mapped.partial(raw="{{ params.raw }}", counts="{{ params.counts }}").expand(label=["same", "same", "same"])

    @task(outlets=[dataset_outlet("demo/step-plain")])
    def plain_in_a_task(**context: object) -> str:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        return plain.run(raw=params["raw"], counts=params["counts"], store=GitfreeHook().get_store()).line

    @task(outlets=[dataset_asset("demo/step-declared")])  # the asset itself: Airflow's event on every success
    def declares_the_asset(**context: object) -> str:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        return run_step(declared, raw=params["raw"], counts=params["counts"]).line

    dies_after_note()
    plain_in_a_task()
    declares_the_asset()


@dag(schedule=None, params={"raw": "", "gate": ""})
def gitfree_step_race() -> None:
    """The slow step alone: raced by a run of gitfree_step_attacks on the same input, one body runs."""
    slow(raw="{{ params.raw }}", gate="{{ params.gate }}")


gitfree_step_attacks()
gitfree_step_race()
