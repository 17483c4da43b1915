"""Lineage both ways: what a version was made from (across stores), what was made from it (reverse edges, one
LIST), what is stale, and the reverse edges kept right by commit, GC, fsck and reindex."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import ALL_KINDS, Servers, kind_of, write_tree

from gitfree import InputRef, Store
from gitfree.cli import STALE, cli
from gitfree.testing import CountingProxy, Faults, SeaweedFS
from gitfree.versioning import layout
from gitfree.versioning.lineage import edge_problems

counter = iter(range(10**6))


def data(tmp_path: Path, text: str) -> Path:
    """A fresh folder holding one file with ``text``."""
    return write_tree(tmp_path / f"src{next(counter)}", {"part.csv": text.encode()})


def pipeline(tmp_path: Path, store: Store, raw_store: Store) -> tuple[str, str, str]:
    """raw (in ``raw_store``) -> features -> model (in ``store``); the refs."""
    raw = raw_store.commit("raw/sales", data(tmp_path, "day 1"), message="nightly export")
    features = store.commit(
        "features",
        data(tmp_path, "f1"),
        message="window=7",
        inputs=[InputRef(dataset=raw.dataset, number=raw.number, store=raw_store.url)],
    )
    model = store.commit("model", data(tmp_path, "m1"), inputs=[features], metrics={"accuracy": 0.91})
    return raw.ref, features.ref, model.ref


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_three_step_pipeline_across_two_stores_as_a_user_reads_it(
    kind: str, make_store: Callable[..., Store], seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    # Each store reaches the other with its own settings (as workers do, from one environment).
    store = make_store(kind, **(seaweedfs.store_options() if kind == "file" else {}))
    raw_store = make_store("s3" if kind == "file" else "file")
    raw, features, model = pipeline(tmp_path, store, raw_store)
    raw_id = f"{raw_store.url}#{raw}"

    up = store.lineage(model)
    assert up.root == "model@1" and [n.id for n in up.nodes] == ["model@1", "features@1", raw_id]
    assert {(e.source, e.target) for e in up.edges} == {("features@1", "model@1"), (raw_id, "features@1")}
    assert up.node(raw_id).store == raw_store.url and up.node(raw_id).message == "nightly export"
    assert up.inputs_of("features@1") == [raw_id]
    assert store.lineage(model, depth=1).inputs_of("features@1") == []  # one hop only

    down = store.lineage(features, "down")
    assert [n.id for n in down.nodes] == ["features@1", "model@1"] and down.consumers_of("features@1") == ["model@1"]
    both = store.lineage(features, "both")
    assert both.inputs_of("features@1") == [raw_id] and both.consumers_of("features@1") == ["model@1"]
    assert type(both).model_validate_json(both.model_dump_json()) == both  # JSON-serialisable, both ways

    assert store.stale() == []
    raw_store.commit("raw/sales", data(tmp_path, "day 2"))
    raw_store.commit("raw/sales", data(tmp_path, "day 2, again"))
    assert [str(s) for s in store.stale()] == [
        f"features@1 was made from raw/sales@1 (in {raw_store.url}); raw/sales is now at @3"
    ]
    store.commit("features", data(tmp_path, "f2"))  # a newer features: now the model is stale too
    assert [str(s) for s in store.stale(["model"])] == ["model@1 was made from features@1; features is now at @2"]

    # The retrained model: its metrics against the first, then promoted through a gate, and the audit says so.
    better = store.commit("model", data(tmp_path, "m2"), inputs=["features@2"], metrics={"accuracy": 0.93})
    change = store.compare(model, better).get("accuracy")
    assert change is not None and (change.old, change.new, change.delta) == (0.91, 0.93, 0.02)
    store.promote(model, "production", message="first release")
    moved = store.promote(better, "production", require={"accuracy": ">="}, message="weekly release")
    assert moved.number == 2 and store.stale(["model"]) == []
    trail = [(e.action, e.ref, e.previous, e.number, e.message) for e in store.audit("model")]
    assert trail == [
        ("moved", "model@production", 1, 2, "weekly release"),
        ("created", "model@production", None, 1, "first release"),
        ("committed", "model@2", None, 2, ""),
        ("committed", "model@1", None, 1, ""),
    ]


def test_a_newer_input_version_with_the_same_data_is_not_stale(store: Store, tmp_path: Path) -> None:
    raw = store.commit("raw", data(tmp_path, "same"))
    store.commit("model", data(tmp_path, "m"), inputs=[raw])
    store.commit("raw", data(tmp_path, "same"), force=True)  # raw@2: new number, same md5
    assert store.show("raw").number == 2 and store.stale() == []


def test_downstream_is_one_list_of_one_prefix_plus_the_records(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path
) -> None:
    options = seaweedfs.store_options()
    writer = Store(s3_url, cache_dir=tmp_path / "w", **options)
    raw = writer.commit("raw", data(tmp_path, "r"))
    consumers = 30
    for i in range(consumers):
        writer.commit(f"m{i % 3}", data(tmp_path, f"m{i}"), inputs=[raw])
    with CountingProxy(seaweedfs.s3_port) as proxy:
        reader = Store(s3_url, cache_dir=tmp_path / "r", **{**options, "endpoint_url": proxy.endpoint})
        version = reader.show("raw@1")
        proxy.take()
        down = reader.lineage(version, "down")
        counts = proxy.take()
    assert len(down.consumers_of("raw@1")) == consumers
    # One LIST of raw@1's edges, one of each consumer's (they have none), and one GET per record: no scan.
    assert counts.requests["GET"] == 1 + consumers + consumers, counts
    assert set(counts.requests) == {"GET"}, counts


def test_gc_removes_the_edges_of_dropped_versions_but_not_those_lineage_goes_through(
    store: Store, tmp_path: Path
) -> None:
    raw = store.commit("raw", data(tmp_path, "r1"))
    store.tag(raw, "keep")
    features = store.commit("features", data(tmp_path, "f1"), inputs=[raw])
    model = store.commit("model", data(tmp_path, "m1"), inputs=[features])
    store.commit("features", data(tmp_path, "f2"), inputs=[raw])  # features@1 is no longer the newest
    scratch = store.commit("scratch", data(tmp_path, "s1"), inputs=[raw])
    store.commit("scratch", data(tmp_path, "s2"))  # scratch@1, made from raw@1, leads nowhere

    report = store.gc(keep_last=1)
    assert sorted(report.versions_deleted) == ["features@1", "scratch@1"]
    assert report.edges_removed == 1  # scratch@1's edge; features@1's leads to model@1, which is kept
    assert store.catalog.consumers("raw", 1) == [("features", 1), ("features", 2)]

    down = store.lineage(raw, "down")  # through the dropped features@1 to the model made from it
    assert down.consumers_of("raw@1") == ["features@1", "features@2"] and down.node("features@1").dropped
    assert down.consumers_of("features@1") == [model.ref]
    up = store.lineage(model)  # and back up through it: its tombstone keeps its inputs
    assert up.inputs_of("features@1") == ["raw@1"] and up.node("features@1").dropped
    assert store.fsck().ok and store.reindex().written == store.reindex().removed == []
    assert scratch.ref not in {n.id for n in down.nodes}

    store.commit("model", data(tmp_path, "m2"))
    assert store.gc(keep_last=1).edges_removed == 2  # model@1 went: nothing is reached through features@1
    assert store.catalog.consumers("raw", 1) == [("features", 2)]
    store.commit("plain", data(tmp_path, "p1"))
    store.commit("plain", data(tmp_path, "p2"))
    store.gc(keep_last=1)
    plain = json.loads(store.backend.get(layout.version_key("plain", 1))[0])
    # A tombstone of a version with no inputs is what gitfree before lineage wrote (and reads).
    assert plain["dropped"] is True and "inputs" not in plain


def test_reindex_records_versions_committed_before_edges_existed(store: Store, tmp_path: Path) -> None:
    raw = store.commit("raw", data(tmp_path, "r"))
    made = [store.commit(f"m{i}", data(tmp_path, f"m{i}"), inputs=[raw]) for i in range(3)]
    edges = list(store.backend.list(layout.used_by_prefix("raw", 1)))
    assert len(edges) == 3
    store.backend.delete_many(edges)  # as a store written by gitfree before lineage
    assert store.lineage(raw, "down").consumers_of("raw@1") == []
    report = store.fsck()
    assert not report.ok and sorted(p.kind for p in report.problems) == ["missing_edge"] * 3

    assert store.reindex(dry_run=True).written == sorted(edges)
    assert list(store.backend.list(layout.used_by_prefix("raw"))) == []  # a dry run writes nothing
    first = store.reindex()
    assert first.written == sorted(edges) and first.edges == 3 and first.versions == 4
    assert store.reindex().written == []  # idempotent
    assert store.lineage(raw, "down").consumers_of("raw@1") == [v.ref for v in made]

    store.backend.delete_many(edges[:1])
    repaired = store.fsck(repair=True)
    assert repaired.ok and [p.kind for p in repaired.problems] == ["missing_edge"] and repaired.problems[0].repaired


def test_forged_and_stale_edges_are_ignored_reported_and_removed(store: Store, tmp_path: Path) -> None:
    raw = store.commit("raw", data(tmp_path, "r"))
    other = store.commit("other", data(tmp_path, "o"))
    forged = layout.used_by_key("raw", 1, "other", 1)  # other@1 was not made from raw@1
    nowhere = layout.used_by_key("raw", 1, "ghost", 7)  # no such version
    for key in (forged, nowhere):
        store.backend.put(key, b"{}")
    assert store.lineage(raw, "down").consumers_of("raw@1") == []
    problems = store.fsck().problems
    assert sorted((p.kind, p.key) for p in problems) == [("orphan_edge", nowhere), ("orphan_edge", forged)]
    assert store.reindex().removed == sorted([forged, nowhere])
    assert list(store.backend.list(layout.used_by_prefix("raw"))) == []
    assert store.show(other.ref) == other  # nothing else touched


def test_an_edge_listed_before_its_record_is_not_taken_for_a_forgery(store: Store, tmp_path: Path) -> None:
    """reindex lists the store once; a commit landing meanwhile may show its edge and not its record (the
    listing reached that dataset's records before the record existed). The edge is judged on its record
    read again, not removed."""
    raw = store.commit("raw", data(tmp_path, "r"))
    before = store.catalog.inventory(journals=False)
    late = store.commit("late", data(tmp_path, "l"), inputs=[raw])
    before.edges.update({k: e for k, e in store.catalog.inventory(journals=False).edges.items()})
    missing, orphans, _ = edge_problems(store.catalog, before)
    assert orphans == [] and missing == {}, (late, orphans)


def test_a_commit_whose_edge_cannot_be_written_is_still_committed_and_reindex_records_it(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = store.commit("raw", data(tmp_path, "r"))
    with Faults(store) as faults:
        faults.fail("create", re.compile(r"/used-by/"), times=None)
        model = store.commit("model", data(tmp_path, "m"), inputs=[raw])
    assert model.created and store.show("model").inputs == [InputRef(dataset="raw", number=1)]
    assert "`gitfree reindex` records it" in caplog.text
    assert [p.kind for p in store.fsck().problems] == ["missing_edge"]
    assert store.reindex().written == [layout.used_by_key("raw", 1, "model", 1)]
    assert store.lineage(raw, "down").consumers_of("raw@1") == ["model@1"]


def test_an_unchanged_commit_writes_no_edge(store: Store, tmp_path: Path) -> None:
    raw = store.commit("raw", data(tmp_path, "r"))
    src = data(tmp_path, "m")
    store.commit("model", src, inputs=[raw])
    with Faults(store) as faults:
        writes = faults.call("create", re.compile(r"/used-by/"), lambda *_: None, times=None)
        again = store.commit("model", src, inputs=[raw])
    assert not again.created and not writes.fired
    assert store.catalog.consumers("raw", 1) == [("model", 1)]


def test_upstream_into_a_store_that_cannot_be_read_is_an_external_node(store: Store, tmp_path: Path) -> None:
    missing_store = (tmp_path / "no-such-store").as_uri()
    bad_url = "s3://"  # not a store URL at all
    model = store.commit(
        "model",
        data(tmp_path, "m"),
        inputs=[
            InputRef(dataset="raw", number=4, store=missing_store),
            InputRef(dataset="raw", number=5, store=bad_url),
        ],
    )
    up = store.lineage(model)
    external = {n.id: n.note for n in up.nodes if n.external}
    assert set(external) == {f"{missing_store}#raw@4", f"{bad_url}#raw@5"}
    assert "does not exist" in external[f"{missing_store}#raw@4"] and "cannot be opened" in external[f"{bad_url}#raw@5"]


def test_forged_records_that_make_a_cycle_end(store: Store, tmp_path: Path) -> None:
    a = store.commit("a", data(tmp_path, "a"))
    b = store.commit("b", data(tmp_path, "b"), inputs=[a])
    record = json.loads(store.backend.get(layout.version_key("a", 1))[0])
    record["inputs"] = [{"dataset": "b", "number": 1, "store": None}]  # a@1 made from b@1 made from a@1
    store.backend.put(layout.version_key("a", 1), json.dumps(record).encode())
    store.backend.put(layout.used_by_key("b", 1, "a", 1), b"{}")
    both = store.lineage(b, "both")
    assert {(e.source, e.target) for e in both.edges} == {("a@1", "b@1"), ("b@1", "a@1")}


@pytest.mark.kinds(*ALL_KINDS)
def test_lineage_stale_and_reindex_on_the_command_line(store: Store, tmp_path: Path, servers: Servers) -> None:
    pipeline(tmp_path, store, store)
    env = {"GITFREE_STORE": store.url, "GITFREE_CACHE_DIR": str(tmp_path / "cli"), **servers.env(kind_of(store))}
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    tree = run("lineage", "model")
    lines = tree.splitlines()
    assert lines[0].startswith("model@1") and "features@1" in lines[1] and "window=7" in lines[1]
    assert "raw/sales@1" in lines[2] and "nightly export" in lines[2]
    assert "model@1" in run("lineage", "raw/sales@1", "--down").splitlines()[-1]
    dot = run("lineage", "model", "--format", "dot")
    assert dot.startswith("digraph lineage {") and '"features@1" -> "model@1";' in dot
    mermaid = run("lineage", "model", "--both", "--format", "mermaid")
    assert mermaid.startswith("flowchart LR") and "n1 --> n0" in mermaid
    assert json.loads(run("lineage", "model", "--json"))["root"] == "model@1"

    assert "nothing is stale" in run("stale")
    store.commit("raw/sales", data(tmp_path, "day 2"))
    out = run("stale", code=STALE)
    assert out == "features@1 was made from raw/sales@1; raw/sales is now at @2\n"
    assert json.loads(run("stale", "--json", code=STALE))[0]["newest"] == "raw/sales@2"
    assert "nothing is stale (1 dataset(s) checked)" in run("stale", "model")
    assert "wrote 0 and removed 0 lineage edge(s); 2 edge(s) for 4 version(s)" in run("reindex")

    for args, code, says in [
        (("lineage", "nothere"), 3, "dataset 'nothere' does not exist"),
        (("lineage", "model@9"), 3, "'model' has no version 9; it has version 1"),
        (("lineage", "model", "--depth", "-1"), 2, "--depth"),
        (("stale", "modle"), 3, "dataset 'modle' does not exist"),
        (("stale", "Bad Name"), 2, "invalid dataset name"),
    ]:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == code and says in result.output and len(result.output.splitlines()) == 1, (
            args,
            result.output,
        )


def test_heads_read_together_are_the_heads_read_one_by_one(store: Store, tmp_path: Path) -> None:
    """``stale`` reads every head at once (hints, their records, the number after each): a missing, stale or
    forged hint must give what ``head`` gives."""
    for name in ("plain", "nohint", "behind", "forged"):
        store.commit(name, data(tmp_path, f"{name} 1"))
    store.backend.delete(layout.latest_key("nohint"))
    hint = store.backend.get(layout.latest_key("behind"))[0]
    store.commit("behind", data(tmp_path, "behind 2"))
    store.backend.put(layout.latest_key("behind"), hint)  # the hint of @1, though @2 exists
    forged = json.loads(store.backend.get(layout.latest_key("forged"))[0])
    forged["version"]["message"] = "not what the record says"
    store.backend.put(layout.latest_key("forged"), json.dumps(forged).encode())
    names = ["plain", "nohint", "behind", "forged", "nothere"]
    together = store.catalog.heads(names)
    assert together == {name: store.catalog.head(name) for name in names}
    assert together["behind"] is not None and together["behind"].number == 2 and together["nothere"] is None
