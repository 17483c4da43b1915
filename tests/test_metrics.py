"""Metrics across versions: ``Store.metrics`` (a dataset's history) and ``Store.compare`` (two versions), on
SeaweedFS and ``file://`` alike (docs/design.md, "Metrics")."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from figures import Figures
from helpers import write_tree

from gitfree import InputError, MetricsDiff, MetricsPoint, NotFoundError, Store
from gitfree.testing import Faults
from gitfree.versioning import layout


def _history(store: Store, tmp_path: Path, dataset: str, metrics: list[dict[str, int | float]]) -> None:
    """One version of ``dataset`` per entry of ``metrics``, oldest first (each with other data)."""
    src = tmp_path / f"src-{dataset}"
    for i, values in enumerate(metrics):
        write_tree(src, {"data.txt": f"{dataset} {i}".encode()})
        store.commit(dataset, src, metrics=values)


def _numbers(points: list[MetricsPoint]) -> list[int]:
    return [p.number for p in points]


def test_metrics_are_listed_newest_first_with_their_types(store: Store, tmp_path: Path) -> None:
    _history(store, tmp_path, "model", [{"acc": 0.89, "rows": 100}, {}, {"acc": 0.91, "rows": 120, "loss": 0.2}])
    points = store.metrics("model")
    assert _numbers(points) == [3, 1]  # version 2 records no metric: not a point
    assert points[0].ref == "model@3" and points[0].metrics == {"acc": 0.91, "rows": 120, "loss": 0.2}
    assert type(points[0].metrics["rows"]) is int and type(points[0].metrics["acc"]) is float
    assert points[0].created_at > points[1].created_at
    assert points[0].created_at == store.show("model@3").created_at
    data = json.loads(json.dumps([p.model_dump(mode="json") for p in points]))
    assert data[0] == {"ref": "model@3", "number": 3, "created_at": data[0]["created_at"], "metrics": points[0].metrics}


def test_names_restrict_the_metrics_and_limit_counts_the_versions_shown(store: Store, tmp_path: Path) -> None:
    _history(store, tmp_path, "model", [{"acc": 0.5, "f1": 0.1}, {"f1": 0.2}, {"acc": 0.7}, {"f1": 0.3}])
    acc = store.metrics("model", ["acc"])
    assert [(p.number, p.metrics) for p in acc] == [(3, {"acc": 0.7}), (1, {"acc": 0.5})]
    assert store.metrics("model", "acc") == acc  # one name as a string
    assert [(p.number, p.metrics) for p in store.metrics("model", ["acc"], limit=1)] == [(3, {"acc": 0.7})]
    assert _numbers(store.metrics("model", limit=2)) == [4, 3]
    assert _numbers(store.metrics("model", ["acc", "f1", "acc"])) == [4, 3, 2, 1]


def test_a_metric_only_older_versions_record_is_not_unknown(store: Store, tmp_path: Path) -> None:
    """``limit`` stops the reading early only once every name asked for has been seen: a metric recorded
    only before the window is no typo."""
    _history(store, tmp_path, "model", [{"old": 1}, {"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}])
    points = store.metrics("model", ["acc", "old"], limit=1)
    assert [(p.number, p.metrics) for p in points] == [(4, {"acc": 0.3})]


def test_an_unknown_metric_names_those_that_exist(store: Store, tmp_path: Path) -> None:
    _history(store, tmp_path, "model", [{"accuracy": 0.5, "rows": 3}, {"loss": 0.1}])
    with pytest.raises(NotFoundError) as caught:
        store.metrics("model", ["acuracy"], limit=1)
    message = str(caught.value)
    assert "'acuracy'" in message and "did you mean 'accuracy'" in message
    assert "its metrics are: accuracy, loss, rows" in message
    with pytest.raises(NotFoundError, match=r"the metrics 'x', 'y'"):
        store.metrics("model", ["rows", "x", "y"])


def test_a_dataset_without_metrics(store: Store, tmp_path: Path) -> None:
    _history(store, tmp_path, "plain", [{}, {}])
    assert store.metrics("plain") == []
    with pytest.raises(NotFoundError, match="records no metrics at all"):
        store.metrics("plain", ["acc"])


def test_an_unknown_dataset_or_bad_arguments(store: Store, tmp_path: Path) -> None:
    _history(store, tmp_path, "model", [{"acc": 0.5}])
    with pytest.raises(NotFoundError, match=r"'modle' does not exist .*it has: model"):
        store.metrics("modle")
    bad: list[dict[str, Any]] = [{"names": []}, {"names": [""]}, {"names": [3]}, {"limit": 0}, {"limit": True}]
    for arguments in [*bad, {"limit": 1.5}]:
        with pytest.raises(InputError):
            store.metrics("model", **arguments)
    with pytest.raises(InputError):
        store.metrics("Model@3")


def test_versions_dropped_by_gc_are_skipped(store: Store, tmp_path: Path) -> None:
    _history(store, tmp_path, "model", [{"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}])
    report = store.gc(keep_last=1, grace=timedelta(0))
    assert sorted(report.versions_deleted) == ["model@1", "model@2"]
    assert [(p.number, p.metrics) for p in store.metrics("model")] == [(3, {"acc": 0.3})]
    assert store.metrics("model", ["acc"], limit=5)[0].number == 3


def test_a_record_that_cannot_be_read_is_skipped_with_a_warning(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _history(store, tmp_path, "model", [{"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}])
    store.backend.put(layout.version_key("model", 2), b'{"format": 1, "dataset": "model", "trunc')
    with caplog.at_level(logging.WARNING, logger="gitfree"):
        assert _numbers(store.metrics("model")) == [3, 1]
    assert any("model@2" in r.getMessage() for r in caplog.records)


def test_a_version_whose_commit_died_before_its_hint_is_listed(store: Store, tmp_path: Path) -> None:
    """A commit that stopped between its record and ``latest.json`` (Commit step 10): the version exists, and
    ``metrics`` (which lists the records) shows it."""
    _history(store, tmp_path, "model", [{"acc": 0.1}])
    write_tree(tmp_path / "src-model", {"data.txt": b"new"})
    with Faults(store) as faults:
        faults.fail(["create", "replace"], layout.latest_key("model"), error=RuntimeError("killed"))
        with pytest.raises(RuntimeError):
            store.commit("model", tmp_path / "src-model", metrics={"acc": 0.2})
    assert [(p.number, p.metrics) for p in store.metrics("model")] == [(2, {"acc": 0.2}), (1, {"acc": 0.1})]


def test_compare_two_versions(store: Store, tmp_path: Path) -> None:
    _history(
        store,
        tmp_path,
        "model",
        [
            {"acc": 0.89, "rows": 100, "gone": 1, "zero": 0, "same": 3},
            {"acc": 0.91, "rows": 120, "zero": 5, "new": 0.5, "same": 3.0},
        ],
    )
    diff = store.compare("model@1", "model")
    assert isinstance(diff, MetricsDiff) and diff.old == "model@1" and diff.new == "model@2"
    assert [m.name for m in diff.metrics] == ["acc", "gone", "new", "rows", "same", "zero"]
    acc, rows, zero, same = (diff.get(n) for n in ("acc", "rows", "zero", "same"))
    assert acc is not None and acc.status == "changed" and acc.delta == 0.02  # as the values read, not 0.0200...18
    assert acc.relative == pytest.approx(0.02 / 0.89)
    assert rows is not None and rows.delta == 20 and type(rows.delta) is int and rows.relative == 0.2
    assert zero is not None and zero.delta == 5 and zero.relative is None  # from 0: no relative change
    assert same is not None and same.status == "unchanged" and same.delta == 0
    assert diff.added == ["new"] and diff.removed == ["gone"]
    gone, new = diff.get("gone"), diff.get("new")
    assert gone is not None and gone.old == 1 and gone.new is None and gone.delta is None and gone.relative is None
    assert new is not None and new.new == 0.5 and new.old is None
    data = json.loads(json.dumps(diff.model_dump(mode="json"), allow_nan=False))
    assert data["added"] == ["new"] and data["removed"] == ["gone"]
    assert data["metrics"][3] == {
        "name": "rows",
        "status": "changed",
        "old": 100,
        "new": 120,
        "delta": 20,
        "relative": 0.2,
    }
    assert bool(diff) and not store.compare("model@2", "model@2")


def test_compare_refuses_what_does_not_exist(store: Store, tmp_path: Path) -> None:
    _history(store, tmp_path, "model", [{"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}])
    _history(store, tmp_path, "other", [{"acc": 0.5}])
    assert store.compare("model", "other").get("acc").delta == 0.2  # type: ignore[union-attr]  # across datasets
    with pytest.raises(NotFoundError, match="has no version 9"):
        store.compare("model@9", "model")
    with pytest.raises(NotFoundError, match="no tag 'prod'"):
        store.compare("model@prod", "model")
    store.gc(keep_last=1, grace=timedelta(0))
    with pytest.raises(NotFoundError, match="dropped by garbage collection"):
        store.compare("model@1", "model")


def test_metrics_while_commits_run(s3_store: Store, make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A reader racing a writer sees whole versions, newest first, and never fails."""
    _history(s3_store, tmp_path, "model", [{"step": 0}])
    writer, stop, seen = make_store("s3"), threading.Event(), []

    def commit() -> None:
        src = tmp_path / "w"
        for step in range(1, 9):
            write_tree(src, {"data.txt": str(step).encode()})
            writer.commit("model", src, metrics={"step": step})
        stop.set()

    thread = threading.Thread(target=commit)
    thread.start()
    while not stop.is_set():
        points = s3_store.metrics("model")
        assert _numbers(points) == sorted(_numbers(points), reverse=True)
        assert all(p.metrics == {"step": p.number - 1} for p in points)
        seen.append(len(points))
    thread.join()
    assert len(s3_store.metrics("model")) == 9 and len(seen) > 1


def test_metrics_of_1000_versions_within_2_seconds(s3_store: Store, tmp_path: Path, figures: Figures) -> None:
    """The figure of docs/benchmarks.md ("Lineage, metrics and promotion"): 1,000 versions on SeaweedFS.

    The records are written as commits write them (as ``bench`` does for ``log``): the same object, 1,000
    create-only records, so the setup takes a second or two; the read is what ``metrics`` does after commits.
    """
    src = write_tree(tmp_path / "d", {"f": b"x"})
    first = s3_store.commit("ds", src, metrics={"acc": 0.0, "rows": 0})

    def write(number: int) -> None:
        record = first.model_copy(
            update={
                "number": number,
                "parent": number - 1,
                "id": uuid.uuid4(),
                "metrics": {"acc": number / 1000, "rows": number},
            }
        )
        s3_store.backend.create(layout.version_key("ds", number), record.model_dump_json().encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(2, 1001)))
    reader = Store(s3_store.url, cache_dir=tmp_path / "reader", settings=s3_store.settings)

    def timed(call: Callable[[], object]) -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    points = reader.metrics("ds")
    assert len(points) == 1000 and points[0].metrics == {"acc": 1.0, "rows": 1000} and points[-1].number == 1
    # Interleaved, best of two: on 2 shared cores one run can be seconds off, in either.
    runs = [(timed(lambda: reader.metrics("ds")), timed(lambda: reader.log("ds"))) for _ in range(2)]
    took, log = min(m for m, _ in runs), min(g for _, g in runs)
    limited = timed(lambda: reader.metrics("ds", ["acc"], limit=10))
    figures.add(
        "metrics",
        f"Store.metrics of 1,000 versions on SeaweedFS: {took:.2f} s (log: {log:.2f} s; limit 10: {limited:.2f} s)",
    )
    # The target is 2 s here; what a loaded machine cannot move is the ratio to log, which reads the same records
    # the same way (1,000 GETs one after the other would take several times as long).
    assert took <= 2.0 or took <= 1.5 * log + 0.25, f"{took:.2f} s, log {log:.2f} s"
