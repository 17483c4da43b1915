"""Versioned steps (``gitfree.step``): a step whose inputs, parameters and code are unchanged returns the version
it made without pulling or running anything; otherwise it runs once, even with workers racing on it."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import ALL_KINDS, write_tree

from gitfree import (
    ConflictError,
    InputError,
    NotFoundError,
    Store,
    Version,
    fingerprint,
    step,
    step_status,
)
from gitfree.cli import STALE, cli
from gitfree.testing import CountingProxy, SeaweedFS
from gitfree.versioning import layout
from gitfree.versioning.leases import Holder

counter = iter(range(10**6))


def data(tmp_path: Path, **files: str) -> Path:
    return write_tree(tmp_path / f"src{next(counter)}", {name: text.encode() for name, text in files.items()})


def featurizer(store: Store, runs: list[dict[str, object]], **options: object) -> Callable[..., Version]:
    """A step making ``features`` from ``raw/sales`` that records each run of its body in ``runs``."""

    @step(output="features", inputs={"raw": "raw/sales@latest"}, store=store, **options)  # type: ignore[arg-type]
    def featurize(raw: Path, out: Path, window: int = 7) -> dict[str, float]:
        rows = (raw / "sales.csv").read_text().splitlines()
        runs.append({"window": window, "raw": sorted(p.name for p in raw.iterdir())})
        (out / "features.csv").write_text("\n".join(f"{r},{window}" for r in rows))
        return {"rows": len(rows)}

    return featurize


def test_a_step_runs_once_then_is_up_to_date_until_an_input_or_parameter_changes(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a\nb"}))
    runs: list[dict[str, object]] = []
    featurize = featurizer(store, runs)
    first = featurize(window=7)
    assert (first.ref, first.created, first.metrics) == ("features@1", True, {"rows": 2})
    assert [str(i) for i in first.inputs] == ["raw/sales@1"]
    assert first.metadata["params"] == {"window": 7}
    step_meta = first.metadata["step"]
    assert isinstance(step_meta, dict) and step_meta["name"].endswith(":featurizer.<locals>.featurize")  # type: ignore[union-attr]
    with caplog.at_level("INFO", logger="gitfree"):
        again = featurize()  # the default is the same parameter: the same key
    assert (again.ref, again.created, len(runs)) == ("features@1", False, 1)
    assert "features@1 is up to date (raw/sales@1, window=7)" in caplog.messages
    assert featurize(window=3).ref == "features@2"  # another parameter: runs
    assert featurize(window=7).ref == "features@1"  # and the first is still up to date
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a\nb\nc"}))
    moved = featurize(window=7)
    assert (moved.ref, [str(i) for i in moved.inputs], len(runs)) == ("features@3", ["raw/sales@2"], 3)
    assert featurize(raw="raw/sales@1").ref == "features@1"  # an input ref in the call: the old version again
    assert len(runs) == 3


def test_an_up_to_date_step_costs_a_few_requests_and_downloads_nothing(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path
) -> None:
    options = seaweedfs.store_options()
    writer = Store(s3_url, cache_dir=tmp_path / "w", **options)
    writer.commit("raw/sales", data(tmp_path, **{"sales.csv": "a\nb"}))
    runs: list[dict[str, object]] = []
    featurizer(writer, runs)()
    with CountingProxy(seaweedfs.s3_port) as proxy:
        reader = Store(s3_url, cache_dir=tmp_path / "r", **{**options, "endpoint_url": proxy.endpoint})
        featurize = featurizer(reader, runs)
        proxy.take()
        assert featurize().ref == "features@1"
        counts = proxy.take()
        assert featurize(raw="raw/sales@1").ref == "features@1"
        pinned = proxy.take()
    assert len(runs) == 1
    # @latest of the input (its hint, its record, the probe past it), one LIST of the step's notes, one record.
    assert counts.requests == {"GET": 5}, counts
    assert pinned.requests == {"GET": 3}, pinned  # the input's record, the LIST, the output's record
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.csv"))


def _defined(tmp_path: Path, source: str) -> Callable[..., object]:
    """``f`` as ``source`` defines it, in a module file of its own (so that its source can be read)."""
    import importlib.util

    path = tmp_path / f"m{next(counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f  # type: ignore[no-any-return]


def test_the_code_fingerprint_ignores_decorators_docstrings_comments_and_layout(tmp_path: Path) -> None:
    plain = "def f(raw, out):\n    (out / 'x').write_text('1')\n"
    dressed = (
        "import functools\n\n@functools.lru_cache\ndef f(raw,\n      out):\n    '''Doc.'''\n"
        "    # a comment\n    (out / 'x').write_text(  '1'  )\n"
    )
    other = "def f(raw, out):\n    (out / 'x').write_text('2')\n"
    only_doc = "def f(raw, out):\n    '''Doc.'''\n"
    defaults = "def f(raw, out, window=3, *, k=1):\n    (out / 'x').write_text('1')\n"
    other_defaults = "def f(raw, out, window=4, *, k=2):\n    (out / 'x').write_text('1')\n"
    same = fingerprint(_defined(tmp_path, plain))
    assert fingerprint(_defined(tmp_path, dressed)) == same
    assert fingerprint(_defined(tmp_path, other)) != same
    assert fingerprint(_defined(tmp_path, only_doc)) != same
    # Defaults are parameters, in the key as values: changing one is no change of code.
    assert fingerprint(_defined(tmp_path, defaults)) == fingerprint(_defined(tmp_path, other_defaults))
    assert fingerprint(lambda: 1) != fingerprint(lambda: 2)


def test_code_version_and_the_code_itself_make_another_key(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    runs: list[dict[str, object]] = []
    assert featurizer(store, runs)().ref == "features@1"
    assert featurizer(store, runs, code_version="2")().ref == "features@2"
    assert featurizer(store, runs, code_version="2")().ref == "features@2"

    @step(output="features", inputs={"raw": "raw/sales"}, store=store)
    def featurize(raw: Path, out: Path, window: int = 7) -> None:  # other code, same output
        (out / "features.csv").write_text("other")

    assert featurize().ref == "features@3"
    assert len(runs) == 2


def test_bad_calls_fail_before_anything_is_read_or_written(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    runs: list[dict[str, object]] = []
    featurize = featurizer(store, runs)
    before = sorted(store.backend.list(""))
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"window": float("nan")}, InputError, "the parameter 'window' is not a JSON value"),
        ({"window": Path("x")}, InputError, "the parameter 'window' is not a JSON value"),
        ({"wndow": 3}, InputError, "unexpected keyword argument 'wndow'"),
        ({"out": "x"}, InputError, "'out' is the folder gitfree gives it"),
        ({"raw": 3}, InputError, "the input 'raw' is int"),
        ({"raw": "nope@1"}, NotFoundError, "dataset 'nope' does not exist"),
        ({"raw": "raw/sales@9"}, NotFoundError, "has no version 9"),
        ({"raw": "raw/sales@prod"}, NotFoundError, "prod"),
    ]
    for kwargs, error, text in cases:
        with pytest.raises(error, match=text):
            featurize(**kwargs)
    assert runs == []
    assert sorted(store.backend.list("")) == before


def test_bad_steps_are_refused_when_decorated(store: Store) -> None:
    with pytest.raises(InputError, match="needs a parameter 'out'"):
        step("features", {"raw": "raw"})(lambda raw: None)
    with pytest.raises(InputError, match="has no parameter 'raw'"):
        step("features", {"raw": "raw"})(lambda out: None)
    with pytest.raises(InputError, match="rename it"):
        step("features", {})(lambda out, force: None)
    with pytest.raises(InputError, match=r"cannot take \*kw"):
        step("features", {})(lambda out, **kw: None)
    with pytest.raises(InputError, match="dataset name"):
        step("../features", {})(lambda out: None)
    with pytest.raises(InputError, match="not one of its inputs"):
        step("features", {}, paths={"raw": ["a"]})(lambda raw, out: None)


def test_a_body_that_raises_or_writes_nothing_leaves_no_version_no_note_no_claim_no_folder(
    store: Store, tmp_path: Path
) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    work = tmp_path / "work"
    work.mkdir()

    @step("features", {"raw": "raw/sales"}, store=store, workdir=work)
    def failing(raw: Path, out: Path) -> None:
        (out / "half.csv").write_text("half")
        raise RuntimeError("the body failed")

    @step("features", {"raw": "raw/sales"}, store=store, workdir=work)
    def lazy(raw: Path, out: Path) -> None:
        pass

    @step("features", {"raw": "raw/sales"}, store=store, workdir=work)
    def odd(raw: Path, out: Path) -> object:
        (out / "x").write_text("x")
        return "done"

    with pytest.raises(RuntimeError, match="the body failed"):
        failing()
    with pytest.raises(InputError, match="lazy wrote nothing to out"):
        lazy()
    with pytest.raises(InputError, match="odd returned str; a step returns nothing or a dict of metrics"):
        odd()
    assert store.datasets() == ["raw/sales"]
    assert list(store.backend.list(layout.STEPS)) == []
    assert list(work.iterdir()) == []


def test_two_workers_racing_on_a_step_make_one_version_with_one_run(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    runs: list[str] = []
    start = threading.Barrier(4)
    results: list[Version] = []

    def worker(n: int) -> None:
        other = Store(store.url, cache_dir=tmp_path / f"cache{n}", settings=store.settings)

        @step("features", {"raw": "raw/sales"}, store=other)
        def featurize(raw: Path, out: Path) -> None:
            runs.append(threading.current_thread().name)
            time.sleep(0.5)  # long enough for every other worker to find the claim
            (out / "f.csv").write_text("f")

        start.wait()
        results.append(featurize())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1
    assert [v.ref for v in results] == ["features@1"] * 4
    assert sum(bool(v.created) for v in results) == 1
    assert store.log("features")[0].number == 1 and len(store.log("features")) == 1
    assert list(store.backend.list(layout.STEPS))[-1].endswith("features@000000000001.json")
    assert not [k for k in store.backend.list(layout.STEPS) if k.endswith("claim.json")]


def test_a_live_claim_is_waited_for_and_a_dead_one_taken_over(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    runs: list[dict[str, object]] = []
    featurize = featurizer(store, runs, wait=0.3)
    call = featurize.bind()  # type: ignore[attr-defined]
    key = featurize.key(featurize.resolve(call, store), call.params)  # type: ignore[attr-defined]
    other = Holder.new(store.backend, store.coordinator.ttl, key=layout.step_claim_key(key), kind="step")
    other.create()  # a live worker (this process: alive) runs it
    try:
        with pytest.raises(ConflictError, match=r"being run by .* \(pid \d+\) since .*; wait longer \(wait=\)"):
            featurize()
        assert runs == []
    finally:
        other.release()
    dead = Holder.new(store.backend, store.coordinator.ttl, key=layout.step_claim_key(key), kind="step")
    dead.lease = dead.lease.model_copy(update={"pid": 2**22 + 1, "expires_at": dead.lease.created_at})
    store.backend.create(dead.key, dead.lease.model_dump_json().encode())  # its process is gone
    assert featurize().ref == "features@1"
    assert len(runs) == 1
    assert not store.backend.exists(layout.step_claim_key(key))


def test_a_version_gc_dropped_or_a_note_that_lies_makes_the_step_run_again(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    runs: list[dict[str, object]] = []
    featurize = featurizer(store, runs)
    first = featurize()
    featurize(window=2)
    featurize(window=3)
    report = store.gc(keep_last=1, grace=timedelta(0))
    assert report.versions_deleted == ["features@1", "features@2"]
    assert report.step_notes_removed == 2
    notes = [layout.parse_step_result_key(k) for k in store.backend.list(layout.STEPS)]
    assert [n[1:] for n in notes if n] == [("features", 3)]
    again = featurize()
    assert (again.ref, len(runs)) == ("features@4", 4)
    assert again.id != first.id
    # A note naming a version its step did not make (written by hand, or a bug) is passed over, and fsck says so.
    call = featurize.bind(window=5)  # type: ignore[attr-defined]
    key = featurize.key(featurize.resolve(call, store), call.params)  # type: ignore[attr-defined]
    store.backend.create(layout.step_result_key(key, "features", 4), b"{}")
    assert featurize(window=5).ref == "features@5"
    assert len(runs) == 5
    problems = store.fsck().problems
    assert [(p.kind, p.ref) for p in problems] == [("orphan_step", "features@4")]
    assert store.fsck().broken_versions == []
    assert store.fsck(repair=True).problems[0].repaired
    assert store.fsck().problems == []


def test_a_note_lost_after_its_commit_makes_no_second_version(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    runs: list[dict[str, object]] = []
    featurize = featurizer(store, runs)
    first = featurize()
    for key in list(store.backend.list(layout.STEPS)):
        store.backend.delete(key)  # a worker killed between the commit and the note
    again = featurize()  # the head was made by this key: noted again, the body not run
    assert (again.ref, again.id, again.created, len(runs)) == (first.ref, first.id, False, 1)
    assert len(list(store.backend.list(layout.STEPS))) == 1
    assert featurize().ref == first.ref
    assert len(runs) == 1


def test_force_runs_the_body_and_makes_a_version_only_if_the_data_differs(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    runs: list[dict[str, object]] = []
    featurize = featurizer(store, runs)
    featurize()
    assert featurize(force=True).ref == "features@1"  # same data, same key: the same version
    assert len(runs) == 2


def test_paths_takes_part_of_an_input_and_single_file_inputs_are_files(store: Store, tmp_path: Path) -> None:
    store.commit("raw/sales", data(tmp_path, **{"2024/sales.csv": "a", "2025/sales.csv": "b"}))
    store.commit("lookup", write_tree(tmp_path / "one", {"lookup.json": b"{}"}) / "lookup.json")
    seen: list[object] = []

    @step("features", {"raw": "raw/sales", "lookup": "lookup"}, store=store, paths={"raw": ["2025"]})
    def featurize(raw: Path, lookup: Path, out: Path) -> None:
        seen.append((sorted(str(p.relative_to(raw)) for p in raw.rglob("*.csv")), lookup.name, lookup.is_file()))
        (out / "f").write_text("f")

    featurize()
    assert seen == [(["2025/sales.csv"], "lookup.json", True)]


def test_a_version_of_another_store_is_refused_as_an_input(tmp_path: Path) -> None:
    here, there = Store(tmp_path / "here"), Store(tmp_path / "there")
    elsewhere = there.commit("raw/sales", data(tmp_path, **{"sales.csv": "x"}))
    here.commit("raw/sales", data(tmp_path, **{"sales.csv": "y"}))
    runs: list[dict[str, object]] = []
    with pytest.raises(InputError, match="is not a version of"):
        featurizer(here, runs)(raw=elsewhere)
    assert featurizer(here, runs)(raw=here.show("raw/sales@1")).ref == "features@1"


@pytest.mark.kinds(*ALL_KINDS)
def test_status_says_what_changed_since_the_step_made_its_version(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: None
) -> None:
    module = tmp_path / "mod"
    module.mkdir()
    source = """
from pathlib import Path
from gitfree import step

@step(output="features", inputs={"raw": "raw/sales@latest"}, store=STORE, code_version=CODE_VERSION)
def featurize(raw: Path, out: Path, window: int = WINDOW) -> None:
    (out / "f.csv").write_text(BODY)
"""

    def define(window: int, body: str, code_version: str | None = None) -> None:
        text = source.replace("STORE", repr(store.url)).replace("WINDOW", str(window)).replace("BODY", repr(body))
        (module / "my_steps.py").write_text(text.replace("CODE_VERSION", repr(code_version)))
        for name in list(os.sys.modules):  # type: ignore[attr-defined]
            if name == "my_steps":
                del os.sys.modules[name]  # type: ignore[attr-defined]

    monkeypatch.chdir(module)
    monkeypatch.syspath_prepend(str(module))
    monkeypatch.setenv("GITFREE_STORE", store.url)  # and the server's variables (store_env)
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "a"}))
    define(7, "f")
    import my_steps  # type: ignore[import-not-found]

    my_steps.featurize()
    runner = CliRunner()
    result = runner.invoke(cli, ["status"])
    assert (result.exit_code, result.output) == (0, "features@1 is up to date (made by the step my_steps:featurize)\n")
    define(14, "g", code_version="2")
    result = runner.invoke(cli, ["status", "features"])
    assert result.exit_code == STALE, result.output
    assert result.output.splitlines() == [
        "features@1: the code of its step changed since it was made (made by the step my_steps:featurize)",
        "features@1: the step's code_version is '2'; it was made with None",
        "features@1: made with window=7; a call with the defaults now uses 14",
    ]
    store.commit("raw/sales", data(tmp_path, **{"sales.csv": "b"}))
    (status,) = step_status(store, ["features"])
    assert [str(s) for s in status.inputs] == ["features@1 was made from raw/sales@1; raw/sales is now at @2"]
    result = runner.invoke(cli, ["status", "raw/sales", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)[0]["note"] == "no versioned step made it"
    assert runner.invoke(cli, ["status", "nope"]).exit_code == 3


def test_gc_counts_the_claims_of_dead_workers_and_removes_no_claim(store: Store) -> None:
    live_key, dead_key = "1" * 64, "2" * 64
    live = Holder.new(store.backend, store.coordinator.ttl, key=layout.step_claim_key(live_key), kind="step")
    live.create()
    try:
        dead = Holder.new(store.backend, store.coordinator.ttl, key=layout.step_claim_key(dead_key), kind="step")
        gone = dead.lease.model_copy(update={"pid": 2**22 + 1, "expires_at": dead.lease.created_at})
        store.backend.create(dead.key, gone.model_dump_json().encode())
        assert store.gc(dry_run=True).step_claims_stale == 1
        # A removal after a read could remove the claim of a worker that took it over in between: none goes.
        assert store.gc().step_claims_stale == 1
        assert sorted(store.backend.list(layout.STEPS)) == sorted([dead.key, live.key])
    finally:
        live.release()
