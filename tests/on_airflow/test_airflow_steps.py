"""Versioned steps as Airflow tasks (docs/airflow.md, "Versioned steps"), run by real ``airflow dags test``
against SeaweedFS: the example pipeline of examples/airflow/gitfree_pipeline.py, and the attacks of
tests/on_airflow/dags/gitfree_step_dags.py (a retried body, a try that dies before its event, mapped tasks
over the same inputs, two DAG runs racing, an odd run id).

A step body runs only when what it reads changed; its task then emits its output's asset event. An
up-to-date step's task succeeds with the line saying so and emits none, so the consumer scheduled on the
model's asset is queued only when the model changed.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree
from on_airflow.airflow_helpers import AIRFLOW, AirflowEnv, skip_without_airflow

skip_without_airflow()
pytestmark = pytest.mark.timeout(600)

SALES = Path(__file__).resolve().parents[2] / "examples" / "airflow" / "sales"
FEATURES, MODEL = "gitfree://demo/sales-features", "gitfree://demo/sales-model"


def _bodies(output: str) -> dict[str, int]:
    """How many times each step body ran in a run, by the line the body itself prints (not gitfree's)."""
    return {name: output.count(f"{name}: ") for name in ("featurize", "train")}


def _refs(env: AirflowEnv, uri: str) -> list[str]:
    return [e["extra"]["ref"] for e in env.events(uri)]


def _consumer_queued(env: AirflowEnv) -> int:
    """Runs of the model's consumer the scheduler would create now; taken off the queue, as the scheduler does."""
    queued = env.queued("sales_model_report")
    env.query("DELETE FROM asset_dag_run_queue WHERE target_dag_id = 'sales_model_report'")
    return queued


def _xcoms(env: AirflowEnv, dag_id: str, task_id: str) -> list[dict[str, Any]]:
    rows = env.query(
        "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id "
        "WHERE x.dag_id = ? AND x.task_id = ? AND x.key = 'return_value' ORDER BY r.id, x.map_index",
        dag_id,
        task_id,
    )
    return [json.loads(value) for (value,) in rows]


def test_the_pipeline_reruns_only_what_changed(airflow_env: AirflowEnv, tmp_path: Path) -> None:
    source = tmp_path / "sales"
    shutil.copytree(SALES, source)
    conf = {"source": str(source), "window": 3, "ridge": 0.0}

    first = airflow_env.dags_test("sales_pipeline", **conf)
    assert first.ok, first.output
    assert _bodies(first.output) == {"featurize": 1, "train": 1}
    assert "featurize made demo/sales-features@1 (demo/sales@1, window=3)" in first.output
    assert "train made demo/sales-model@1 (demo/sales-features@1, ridge=0.0)" in first.output
    assert (_refs(airflow_env, FEATURES), _refs(airflow_env, MODEL)) == (
        ["demo/sales-features@1"],
        ["demo/sales-model@1"],
    )
    assert _consumer_queued(airflow_env) == 1
    store = airflow_env.store()
    model = store.show("demo/sales-model@1")
    assert [str(i) for i in model.inputs] == ["demo/sales-features@1"]
    assert model.metadata["params"] == {"ridge": 0.0}
    assert set(model.metrics) == {"rmse", "rows"} and model.metrics["rows"] == 12
    assert (model.author.orchestrator, model.author.pipeline, model.author.task_id) == (
        "airflow",
        "sales_pipeline",
        "train",
    )

    # The same raw data again: no step body runs, no version, no event, no consumer run; the tasks succeed.
    again = airflow_env.dags_test("sales_pipeline", **conf)
    assert again.ok, again.output
    assert _bodies(again.output) == {"featurize": 0, "train": 0}
    assert "demo/sales-features@1 is up to date (demo/sales@1, window=3)" in again.output
    assert "demo/sales-model@1 is up to date (demo/sales-features@1, ridge=0.0)" in again.output
    assert "no asset event: demo/sales-model@1 is not a new version" in again.output
    assert (_refs(airflow_env, FEATURES), _refs(airflow_env, MODEL)) == (
        ["demo/sales-features@1"],
        ["demo/sales-model@1"],
    )
    assert _consumer_queued(airflow_env) == 0
    run = str(airflow_env.query("SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 1")[0][0])
    states = dict(airflow_env.query("SELECT task_id, state FROM task_instance WHERE run_id = ?", run))
    assert states == {"ingest": "success", "featurize": "success", "train": "success"}

    # One raw file changed: all three run, and the consumer is queued.
    write_tree(source, {"shop-2.csv": (SALES / "shop-2.csv").read_bytes() + b"7,5.10,21\n"})
    changed = airflow_env.dags_test("sales_pipeline", **conf)
    assert changed.ok, changed.output
    assert _bodies(changed.output) == {"featurize": 1, "train": 1}
    assert "featurize: read 13 rows" in changed.output
    assert _refs(airflow_env, MODEL) == ["demo/sales-model@1", "demo/sales-model@2"]
    assert _refs(airflow_env, FEATURES) == ["demo/sales-features@1", "demo/sales-features@2"]
    assert _consumer_queued(airflow_env) == 1

    # Only train's parameter changed: only train runs, on the features it read before.
    ridge = airflow_env.dags_test("sales_pipeline", **{**conf, "ridge": 0.5})
    assert ridge.ok, ridge.output
    assert _bodies(ridge.output) == {"featurize": 0, "train": 1}
    assert "demo/sales-features@2 is up to date (demo/sales@2, window=3)" in ridge.output
    assert _refs(airflow_env, FEATURES) == ["demo/sales-features@1", "demo/sales-features@2"]
    assert _refs(airflow_env, MODEL)[-1] == "demo/sales-model@3"
    assert _consumer_queued(airflow_env) == 1
    assert store.show("demo/sales-model@3").metadata["params"] == {"ridge": 0.5}
    assert [str(i) for i in store.show("demo/sales-model@3").inputs] == ["demo/sales-features@2"]

    assert [(x["ref"], x["created"], x["ran"]) for x in _xcoms(airflow_env, "sales_pipeline", "featurize")] == [
        ("demo/sales-features@1", True, True),
        ("demo/sales-features@1", False, False),
        ("demo/sales-features@2", True, True),
        ("demo/sales-features@2", False, False),
    ]


# ---------------------------------------------------------------------------- without a DAG run (in-process)

from airflow.sdk import DAG, Asset  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

from gitfree.airflow import dataset_asset, dataset_outlet, run_step, step  # noqa: E402
from gitfree.versioning import Store, step_status  # noqa: E402
from gitfree.versioning import step as plain_step  # noqa: E402


def _copy(raw: Path, out: Path, window: int = 3) -> None:
    (out / "copy").write_bytes((raw / "r.csv").read_bytes() * window)


def _operator(called: Any) -> Any:
    """The task a call of a step task made in a DAG (its XComArg's operator)."""
    return called.operator


def test_a_step_task_is_checked_when_the_dag_is_parsed() -> None:
    copy = step("demo/copy", {"raw": "demo/raw@latest"})(_copy)
    with DAG("parsed", schedule=None):
        made = _operator(copy(window=2))

        with pytest.raises(TypeError, match="windw"):
            copy(windw=2)
        with pytest.raises(TypeError, match="positional"):
            copy("demo/raw@1")
        mapped = _operator(copy.partial(raw="demo/raw@1").expand(window=[1, 2]))
        other = _operator(copy.override(task_id="other", outlets=[Asset("s3://b/k")])(window=1))
    assert made.task_id == "_copy"
    assert made.op_kwargs == {"window": 2}
    # Each declares the alias the step's event goes to (a mapped task when the DAG is parsed, too).
    assert made.outlets == mapped.outlets == [dataset_outlet("demo/copy")]
    assert other.outlets == [Asset("s3://b/k"), dataset_outlet("demo/copy")]

    def ds(raw: Path, out: Path, ds: str = "x") -> None: ...

    def gitfree_conn_id(raw: Path, out: Path, gitfree_conn_id: str = "x") -> None: ...

    def retries(raw: Path, out: Path, retries: int = 0) -> None: ...  # a DAG's default_args would fill it

    def no_out(raw: Path) -> None: ...

    refused: list[tuple[Callable[..., None], str]] = [
        (ds, "the step ds has a parameter 'ds', one of the names a task takes for itself; rename it"),
        (gitfree_conn_id, "the step gitfree_conn_id has a parameter 'gitfree_conn_id', one of the names a task"),
        (retries, "the step retries has a parameter 'retries', one of the names a task takes for itself"),
        (no_out, "the step no_out needs a parameter 'out'"),
    ]
    for fn, message in refused:
        with pytest.raises(AirflowFailException, match=f"gitfree: {message}"):
            step("demo/copy", {"raw": "demo/raw@latest"})(fn)
    with pytest.raises(AirflowFailException, match="gitfree: invalid dataset name 'Demo Copy'"):
        step("Demo Copy", {"raw": None})(_copy)
    with pytest.raises(AirflowFailException, match="declares gitfree://demo/copy in outlets"):
        step("demo/copy", {"raw": None}, outlets=[dataset_asset("demo/copy")])(_copy)


def test_run_step_outside_a_task_takes_xcoms_of_its_store_only(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path / 'store'}")
    raw = store.commit("demo/raw", write_tree(tmp_path / "raw", {"r.csv": b"1\n"}))
    copy = plain_step("demo/copy", {"raw": None})(_copy)
    xcom = {"ref": raw.ref, "store": store.url, "created": True}
    made = run_step(copy, raw=xcom, window=2, store=store, gitfree_conn_id=None)
    assert (made.ran, made.version.ref, made.line) == (
        True,
        "demo/copy@1",
        "_copy made demo/copy@1 (demo/raw@1, window=2)",
    )
    again = run_step(copy, raw=raw.ref, window=2, store=store, gitfree_conn_id=None)
    assert (again.ran, again.version.ref) == (False, "demo/copy@1")
    with pytest.raises(AirflowFailException, match="names the store s3://elsewhere/x, but this task's connection"):
        run_step(copy, raw={**xcom, "store": "s3://elsewhere/x"}, store=store, gitfree_conn_id=None)
    with pytest.raises(AirflowFailException, match="the input 'raw' is a dict without a 'ref'"):
        run_step(copy, raw={"number": 1}, store=store, gitfree_conn_id=None)
    with pytest.raises(AirflowFailException, match="gitfree: dataset 'demo/rwa' does not exist"):
        run_step(copy, raw="demo/rwa@1", store=store, gitfree_conn_id=None)  # a typo: nothing runs
    with pytest.raises(AirflowFailException, match="force is 'yes'; give true or false"):
        run_step(copy, raw=raw.ref, force="yes", store=store, gitfree_conn_id=None)  # type: ignore[arg-type]

    def nothing(raw: Path, out: Path) -> None: ...

    with pytest.raises(AirflowFailException, match="gitfree: nothing wrote nothing to out"):
        run_step(plain_step("demo/nothing", {"raw": None})(nothing), raw=raw.ref, store=store, gitfree_conn_id=None)

    def context(raw: Path, out: Path, context: str = "") -> None: ...

    with pytest.raises(AirflowFailException, match="parameter 'context', one of run_step's own arguments"):
        run_step(plain_step("demo/ctx", {"raw": None})(context), raw=raw.ref, store=store, gitfree_conn_id=None)
    assert [v.number for v in store.log("demo/copy")] == [1]


def test_status_finds_the_step_of_an_airflow_step_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``gitfree status`` imports the step its record names (the DAG file's task) and compares it."""
    (tmp_path / "dag_steps.py").write_text(
        "from pathlib import Path\nimport gitfree.airflow\n\n"
        '@gitfree.airflow.step("demo/status", {"raw": None})\n'
        "def featurize(raw: Path, out: Path, window: int = 3) -> None:\n"
        "    (out / 'f').write_bytes((raw / 'r.csv').read_bytes() * window)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("dag_steps", None)
    task = importlib.import_module("dag_steps").featurize
    store = Store(f"file://{tmp_path / 'store'}")
    raw = store.commit("demo/raw", write_tree(tmp_path / "raw", {"r.csv": b"1\n"}))
    made = task.function(raw=raw.ref, store=store, gitfree_conn_id=None)  # the task's callable, outside a DAG run
    assert made.version.metadata["step"]["name"] == "dag_steps:featurize"
    [status] = step_status(store, ["demo/status"])
    assert (status.step, status.note, status.up_to_date) == ("dag_steps:featurize", "", True)


# ---------------------------------------------------------------------------- attacks (after the in-process tests,
# so that pytest-xdist's first batches put the two long tests on different workers)


def _start(env: AirflowEnv, log: Path, dag_id: str, conf: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [AIRFLOW, "dags", "test", dag_id, "-c", json.dumps(conf)],
            env={**env.env(), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=env.home,
        )


def _race(envs: list[AirflowEnv], runs: list[tuple[str, dict[str, str]]], gate: Path, logs: list[Path]) -> list[str]:
    """Start the DAG runs at once; open ``gate`` once one slow body started and another run waits for it."""
    procs = [_start(env, log, dag_id, conf) for env, log, (dag_id, conf) in zip(envs, logs, runs, strict=True)]
    try:
        deadline = time.monotonic() + 240
        waiting = "slow with these inputs is being run by"
        while not (Path(f"{gate}.started").exists() and any(waiting in log.read_text() for log in logs)):
            assert time.monotonic() < deadline, [log.read_text()[-3000:] for log in logs]
            assert all(p.poll() is None for p in procs), [log.read_text()[-3000:] for log in logs]
            time.sleep(0.2)
        gate.write_text("go")
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    outputs = [log.read_text() for log in logs]
    assert codes == [0] * len(procs), outputs
    return outputs


def test_retries_mapped_tasks_racing_runs_and_an_odd_run_id(
    airflow_env: AirflowEnv, migrated_db: Path, tmp_path: Path
) -> None:
    """A body that fails once, a try that dies before its event, mapped tasks over the same inputs, a plain
    gitfree.step, a task declaring the asset itself, two Airflow deployments racing on one store, a run id
    with odd characters."""
    store = airflow_env.store()
    store.commit("demo/step-raw", write_tree(tmp_path / "raw", {"r.csv": b"a,b\n1,2\n"}))
    counts = tmp_path / "counts"
    counts.mkdir()
    gate = counts / "gate"
    # Another Airflow (a database of its own) on the same store, whose run races the slow step.
    other = AirflowEnv(tmp_path / "other", airflow_env.seaweedfs, airflow_env.store_url, dict(airflow_env.connections))
    shutil.copytree(airflow_env.home, other.home)
    shutil.copy(migrated_db, other.home / "airflow.db")
    raw = "demo/step-raw@1"
    outputs = _race(
        [airflow_env, other],
        [
            ("gitfree_step_attacks", {"raw": raw, "counts": str(counts), "gate": str(gate)}),
            ("gitfree_step_race", {"raw": raw, "gate": str(gate)}),
        ],
        gate,
        [tmp_path / "attacks.log", tmp_path / "race.log"],
    )
    output = outputs[0]

    def ran(name: str) -> int:
        path = counts / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    def events(dataset: str, env: AirflowEnv = airflow_env) -> list[tuple[str, int]]:
        return [(e["extra"]["ref"], e["extra"]["try_number"]) for e in env.events(f"gitfree://{dataset}")]

    # A body that fails once: the retry runs it again; one version, one event, from the try that made it.
    assert ran("flaky") == 2
    assert "flaky fails its first run" in output
    assert [v.number for v in store.log("demo/step-flaky")] == [1]
    assert events("demo/step-flaky") == [("demo/step-flaky@1", 2)]

    # A try that dies after its version and its note, before its event: the retry finds the version up to
    # date, recognises it as its own (the same commit id) and emits its event; the body ran once.
    assert "RuntimeError: died" in output
    assert ran("noted") == 1
    assert [v.number for v in store.log("demo/step-noted")] == [1]
    assert events("demo/step-noted") == [("demo/step-noted@1", 2)]
    assert "noted made demo/step-noted@1 in an earlier attempt (demo/step-raw@1" in output  # the core says so

    # Three mapped tasks of one step over the same inputs: one body run, one version, one event.
    assert ran("mapped") == 1
    assert [v.number for v in store.log("demo/step-mapped")] == [1]
    assert [ref for ref, _ in events("demo/step-mapped")] == ["demo/step-mapped@1"]
    mapped = _xcoms(airflow_env, "gitfree_step_attacks", "mapped")
    assert sorted((x["ref"], x["created"]) for x in mapped) == [("demo/step-mapped@1", False)] * 2 + [
        ("demo/step-mapped@1", True)
    ]

    # A plain gitfree.step inside a @task: it makes its version, but knows no Airflow: no event, no DAG run.
    assert ran("plain") == 1
    assert events("demo/step-plain") == []
    assert store.show("demo/step-plain@1").author.orchestrator is None

    # A task that declares the step's asset itself is warned: Airflow records an event (with no version) each
    # time such a task succeeds.
    assert "declare outlets=[gitfree.airflow.dataset_outlet('demo/step-declared')] instead" in output
    assert ["ref" in e["extra"] for e in airflow_env.events("gitfree://demo/step-declared")] == [False]

    # Two DAG runs at once on the same new input: one slow body ran, the other task waited for its claim and
    # found its version up to date; one version, one event (from the run that made it).
    assert ran("slow") == 1
    assert [v.number for v in store.log("demo/step-race")] == [1]
    made = [i for i, out in enumerate(outputs) if "slow made demo/step-race@1" in out]
    waited = [i for i, out in enumerate(outputs) if "demo/step-race@1 is up to date" in out]
    assert sorted(made + waited) == [0, 1], outputs
    assert events("demo/step-race", (airflow_env, other)[made[0]]) == [("demo/step-race@1", 1)]
    assert events("demo/step-race", (airflow_env, other)[waited[0]]) == []

    # A deployment whose allowed_run_id_pattern lets any run id through: a step task of a run whose id has
    # spaces, quotes, %s, $HOME, {{ ds }}, ~ and + makes its version, records the id whole in its author and
    # emits its event. (Airflow 3.3 itself fails such a task at its XCom push, after gitfree's part is done,
    # when the id has /, ? or # or a character beyond ASCII.)
    store.commit("demo/step-raw", write_tree(tmp_path / "raw", {"r.csv": b"a,b\n3,4\n"}))
    odd = "odd run: ~+ \"quoted\" 'too' ; $HOME %s {{ ds }} * end"
    airflow_env.settings["AIRFLOW__SCHEDULER__ALLOWED_RUN_ID_PATTERN"] = "^.+$"
    conf = json.dumps({"raw": "demo/step-raw@2", "gate": str(gate)})  # the gate is open
    trigger = airflow_env.run("dags", "trigger", "gitfree_step_race", "--run-id", odd, "--conf", conf)
    assert trigger.ok, trigger.output
    task = airflow_env.run("tasks", "test", "gitfree_step_race", "slow", odd)
    assert task.ok, task.output
    assert "slow made demo/step-race@2 (demo/step-raw@2" in task.output
    author = store.show("demo/step-race@2").author
    assert (author.pipeline, author.run_id, author.task_id) == ("gitfree_step_race", odd, "slow")
    assert [(e["extra"]["ref"], e["run_id"]) for e in airflow_env.events("gitfree://demo/step-race")][-1] == (
        "demo/step-race@2",
        odd,
    )
