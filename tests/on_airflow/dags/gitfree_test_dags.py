"""DAGs the Airflow tests run with ``airflow dags test`` (beside examples/airflow/gitfree_dags.py).

Paths and refs come from the run's conf (``-c '{"source": ...}'``), which overrides the params.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import dag, task

from gitfree.airflow import (
    GitfreeCommitOperator,
    GitfreePullOperator,
    commit_dataset,
    dataset_asset,
    dataset_outlet,
    pull_dataset,
    version_from_asset,
)

NOTES = dataset_asset("demo/notes")


@dag(schedule=None, params={"source": "", "dest": ""})
def gitfree_taskflow() -> None:
    """TaskFlow: a task writes a file and commits it; the next one pulls the version its event names."""

    @task(outlets=[dataset_outlet("demo/notes")])
    def write_and_commit(**context: object) -> str:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        source = Path(params["source"])
        source.mkdir(parents=True, exist_ok=True)
        (source / "note.txt").write_text(f"written by {context['run_id']}\n")
        return commit_dataset("demo/notes", source, message="taskflow", metrics={"notes": 1}).ref

    @task(inlets=[NOTES])
    def pull_it(committed: str, **context: object) -> str:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        named = version_from_asset(NOTES)
        version = pull_dataset(NOTES, params["dest"], overwrite=True)
        assert named == committed == version.ref, (named, committed, version.ref)
        print(f"taskflow pulled {version.ref}")
        return version.ref

    pull_it(write_and_commit())  # type: ignore[arg-type]  # an XComArg: Airflow passes its value at run time


@dag(schedule=None, params={"refs": ["", "", ""], "dest": ""})
def gitfree_pull() -> None:
    """The pull operator with refs from the conf (a number, a tag, latest): ``dest/0``, ``dest/1``, ``dest/2``."""
    for i in range(3):
        GitfreePullOperator(
            task_id=f"pull_{i}", ref=f"{{{{ params.refs[{i}] }}}}", dest=f"{{{{ params.dest }}}}/{i}", overwrite=True
        )


@dag(schedule=None, params={"source": "", "store": ""})
def gitfree_aws() -> None:
    """A commit through an Amazon-provider style ``aws`` connection, the store URL given to the operator."""
    GitfreeCommitOperator(
        task_id="commit",
        dataset="demo/aws",
        path="{{ params.source }}",
        store="{{ params.store }}",
        gitfree_conn_id="aws_store",
    )


@dag(schedule=None, params={"source": ""})
def gitfree_skip() -> None:
    """skip_if_unchanged: unchanged data skips the commit task and what follows it."""
    commit = GitfreeCommitOperator(
        task_id="commit", dataset="demo/skip", path="{{ params.source }}", skip_if_unchanged=True
    )

    @task
    def after() -> None:
        print("ran after a new version")

    commit >> after()


@dag(schedule=None, params={"source": ""})
def gitfree_retry() -> None:
    """A task that crashes after its commit on the first try: the retry finds that version, makes no other."""

    @task(outlets=[dataset_outlet("demo/retry")], retries=1, retry_delay=timedelta(seconds=0))
    def flaky(**context: object) -> str:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        version = commit_dataset("demo/retry", params["source"])
        if context["ti"].try_number == 1:  # type: ignore[attr-defined]
            raise RuntimeError(f"crashed after committing {version.ref}")
        return version.ref

    flaky()


@dag(schedule=None, params={"ref": "", "dest": ""})
def gitfree_retries() -> None:
    """Operators with two retries and no delay: an error a retry can fix uses them, any other fails the task at once."""
    GitfreePullOperator(
        task_id="pull",
        ref="{{ params.ref }}",
        dest="{{ params.dest }}",
        overwrite=True,
        retries=2,
        retry_delay=timedelta(seconds=0),
    )


@dag(schedule=None, params={"source": ""})
def gitfree_commit_created() -> None:
    """A commit operator with retries: its XCom says ``created`` (true: a new version; false: unchanged); its
    templated metrics render as text."""
    GitfreeCommitOperator(
        task_id="commit",
        dataset="demo/created",
        path="{{ params.source }}",
        metrics={"rows": "{{ 40 + 2 }}", "loss": "{{ 0.25 }}"},  # Jinja renders text: read as --metric reads it
        retries=2,
        retry_delay=timedelta(seconds=0),
    )


gitfree_taskflow()
gitfree_retry()
gitfree_retries()
gitfree_commit_created()
gitfree_pull()
gitfree_aws()
gitfree_skip()
