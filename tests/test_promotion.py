"""Promotion by stage (docs/design.md, "Tag moves"): metric gates that show both values when they refuse, a
stage order that refuses skipping a stage, a compare-and-swap that refuses a promotion judged against a
holder that has since moved; and the audit trail of a dataset, through the API and the ``gitfree`` command."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import ConflictError, GateError, InputError, IntegrityError, NotFoundError, Store, is_transient
from gitfree.cli import cli
from gitfree.testing import Faults
from gitfree.versioning import layout

MODEL = "models/churn"


def _models(store: Store, tmp_path: Path, metrics: list[Mapping[str, float]]) -> None:
    for i, m in enumerate(metrics, start=1):
        store.commit(MODEL, write_tree(tmp_path / f"m{i}", {"model.json": f"{i}".encode()}), metrics=dict(m))


@pytest.fixture
def models(make_store: Callable[..., Store], tmp_path: Path) -> Store:
    """models/churn@1..4: accuracy 0.90, 0.93, 0.91, 0.95; f1 0.80, 0.85, 0.95, 0.88; @4 has no 'auc'.

    In a file store: what a gate decides does not depend on the backend (the compare-and-swap that a
    promotion ends with is tested on both)."""
    store = make_store("file")
    _models(
        store,
        tmp_path,
        [
            {"accuracy": 0.90, "f1": 0.80, "auc": 0.7},
            {"accuracy": 0.93, "f1": 0.85, "auc": 0.8},
            {"accuracy": 0.91, "f1": 0.95, "auc": 0.9},
            {"accuracy": 0.95, "f1": 0.88},
        ],
    )
    return store


def test_a_gate_against_the_holder_promotes_the_better_and_refuses_the_worse(models: Store) -> None:
    models.tag(f"{MODEL}@2", "production")
    with pytest.raises(GateError) as refused:
        models.promote(f"{MODEL}@3", "production", require={"accuracy": ">="})
    assert str(refused.value) == (
        f"refused to promote {MODEL}@3 to production: accuracy 0.91 < 0.93 of {MODEL}@2 (production)"
    )
    assert isinstance(refused.value, ConflictError) and refused.value.exit_code == 4
    assert not is_transient(refused.value)  # the same metrics give the same answer: orchestrators do not retry
    assert models.show(f"{MODEL}@production").number == 2
    assert len(models.tag_history(MODEL, "production")) == 1  # a refusal writes nothing

    made = models.promote(f"{MODEL}@4", "production", require=["accuracy>=", "f1 >= 0.85"], message="weekly")
    assert (made.number, made.previous, made.written, made.message) == (4, 2, True, "weekly")
    assert made.gate == f"accuracy 0.95 >= 0.93 of {MODEL}@2 (production); f1 0.88 >= 0.85"
    [_, event] = models.tag_history(MODEL, "production")
    assert (event.previous, event.number, event.gate, event.message) == (2, 4, made.gate, "weekly")


def test_absolute_bounds_and_every_operator(models: Store) -> None:
    with pytest.raises(GateError, match=r"f1 0\.8 < 0\.85; accuracy 0\.9 != 0\.93$"):
        models.promote(f"{MODEL}@1", "dev", require={"f1": ">= 0.85", "accuracy": "==0.93"})
    cases = [(">0.9", True), ("<0.91", False), ("<=0.91", True), ("==0.91", True), (">=1", False)]
    for i, (spec, passes) in enumerate(cases):
        if passes:
            assert models.promote(f"{MODEL}@3", f"s{i}", require={"accuracy": spec}).number == 3
        else:
            with pytest.raises(GateError):
                models.promote(f"{MODEL}@3", "never", require={"accuracy": spec})


def test_a_stage_with_no_holder_yet_promotes_and_says_so(models: Store, caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="gitfree"):
        made = models.promote(f"{MODEL}@1", "production", require=["accuracy>=", "f1>=0.5"])
    assert made.number == 1 and made.previous is None
    assert made.gate == "accuracy >= not applied: production had no holder; f1 0.8 >= 0.5"
    assert "production had no holder: promoting models/churn@1 without comparing its metrics" in caplog.text


def test_missing_and_unknown_metrics(models: Store) -> None:
    models.tag(f"{MODEL}@3", "production")
    with pytest.raises(GateError, match=f"{MODEL}@4 has no metric 'auc'"):
        models.promote(f"{MODEL}@4", "production", require={"auc": ">="})  # the candidate lacks it
    with pytest.raises(InputError) as typo:
        models.promote(f"{MODEL}@4", "production", require={"acuracy": ">="})
    assert str(typo.value) == (
        f"no version has the metric 'acuracy' the promotion requires: {MODEL}@4 has accuracy, f1; "
        f"{MODEL}@3 has accuracy, auc, f1"
    )
    models.tag(f"{MODEL}@4", "staging")
    with pytest.raises(GateError, match=f"{MODEL}@4 \\(staging\\) has no metric 'auc' to compare with"):
        models.promote(f"{MODEL}@3", "staging", require={"auc": ">="})  # the holder lacks it


def test_a_malformed_requirement_is_bad_input(models: Store) -> None:
    malformed: list[Any] = [
        ["accuracy"],
        ["accuracy=>"],
        ["accuracy>=high"],
        ["accuracy>=nan"],
        ["accuracy>=inf"],
        [">=0.9"],
        {"accuracy": "at least"},
        {"": ">="},
    ]
    for require in malformed:
        with pytest.raises(InputError, match="requirement"):
            models.promote(f"{MODEL}@1", "production", require=require)
    with pytest.raises(NotFoundError):
        models.show(f"{MODEL}@production")


def test_the_stage_order_refuses_skipping_a_stage(models: Store) -> None:
    assert models.stages(MODEL) == []
    assert models.set_stages(MODEL, ["dev", "staging", "production"]) == ["dev", "staging", "production"]
    assert models.stages(MODEL) == ["dev", "staging", "production"]
    with pytest.raises(GateError) as skipped:
        models.promote(f"{MODEL}@2", "production")
    assert str(skipped.value) == (
        f"refused to promote {MODEL}@2 to production: the stages of {MODEL!r} are dev → staging → production, "
        f"and {MODEL}@2 does not hold staging (staging has no version); promote it to staging first"
    )
    with pytest.raises(GateError, match="does not hold dev"):
        models.promote(f"{MODEL}@2", "staging")
    models.promote(f"{MODEL}@2", "dev")
    models.promote(f"{MODEL}@2", "staging")
    made = models.promote(f"{MODEL}@2", "production", require=["accuracy>="])
    assert made.gate == "accuracy >= not applied: production had no holder; held staging"
    models.promote(f"{MODEL}@4", "dev")
    with pytest.raises(GateError, match=f"staging is at {MODEL}@2"):
        models.promote(f"{MODEL}@4", "production")
    with pytest.raises(InputError, match="'prod' is not a stage of 'models/churn': its stages are dev → staging"):
        models.promote(f"{MODEL}@4", "prod")
    assert models.set_stages(MODEL, []) == []
    assert models.promote(f"{MODEL}@4", "production").number == 4  # no order: any stage, in any order


def test_stage_orders_are_checked(models: Store) -> None:
    with pytest.raises(InputError, match="name a stage twice"):
        models.set_stages(MODEL, ["dev", "prod", "dev"])
    with pytest.raises(InputError, match="invalid tag 'Prod'"):
        models.set_stages(MODEL, ["dev", "Prod"])
    with pytest.raises(NotFoundError, match="dataset 'models/chrun' does not exist"):
        models.set_stages("models/chrun", ["dev"])
    models.set_stages(MODEL, ["a", "b"])
    assert models.set_stages(MODEL, ["a", "b"]) == ["a", "b"]  # unchanged: nothing written
    models.backend.put(layout.stages_key(MODEL), b'{"format": 1, "dataset": "other", "stages": []}')
    with pytest.raises(IntegrityError, match=r"stages\.json"):
        models.stages(MODEL)


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_a_promotion_judged_against_a_holder_that_moved_is_refused(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    """Another worker moves production after this promotion read it (and judged the candidate against its
    holder) and before it swaps: the swap is made only from the record judged, so it is refused, and the
    other worker's move stands."""
    models, other = make_store(kind), make_store(kind)
    _models(models, tmp_path, [{"accuracy": a} for a in (0.90, 0.93, 0.91, 0.95)])
    models.tag(f"{MODEL}@1", "production")

    def move_it(_: Any) -> None:
        other.tag(f"{MODEL}@4", "production", move=True, message="meanwhile")

    with Faults(models) as faults:
        faults.call("get", layout.tag_key(MODEL, "production"), move_it, when="after", times=1)
        with pytest.raises(ConflictError, match="moved by someone else since it was read") as raced:
            models.promote(f"{MODEL}@3", "production", require={"accuracy": ">="})  # 0.91 >= 0.90 of @1
    assert is_transient(raced.value)  # promoting again judges it against the new holder
    assert models.show(f"{MODEL}@production").number == 4
    assert [e.message for e in models.tag_history(MODEL, "production")] == ["", "meanwhile"]
    with pytest.raises(GateError, match=f"accuracy 0.91 < 0.95 of {MODEL}@4"):
        models.promote(f"{MODEL}@3", "production", require={"accuracy": ">="})


def test_promoting_the_holder_again_writes_nothing(models: Store) -> None:
    models.promote(f"{MODEL}@2", "production")
    again = models.promote(f"{MODEL}@2", "production", require={"accuracy": ">"})
    assert (again.written, again.seq) == (False, 1)
    with pytest.raises(InputError, match="no version has the metric 'acuracy'"):  # a typo is still one
        models.promote(f"{MODEL}@2", "production", require={"acuracy": ">"})
    assert len(models.tag_history(MODEL, "production")) == 1


def test_the_audit_trail_is_commits_drops_and_tag_writes_newest_first(models: Store) -> None:
    models.tag(f"{MODEL}@1", "old")
    models.promote(f"{MODEL}@2", "production", message="go")
    models.promote(f"{MODEL}@4", "production", require=["accuracy>="])
    models.untag(MODEL, "old", message="done")
    models.gc(keep_last=1, grace=timedelta(0))  # drops @1 (untagged) and @3; @2 is no longer tagged either
    trail = models.audit(MODEL)
    assert [e.at for e in trail] == sorted((e.at for e in trail), reverse=True)
    summary = [(e.action, e.ref) for e in trail]
    assert sorted(summary[:3]) == [("dropped", f"{MODEL}@{n}") for n in (1, 2, 3)]  # the GC came last
    assert trail[0].author.host  # who ran it
    assert summary[3:7] == [
        ("deleted", f"{MODEL}@old"),
        ("moved", f"{MODEL}@production"),
        ("created", f"{MODEL}@production"),
        ("created", f"{MODEL}@old"),
    ]
    assert [r for a, r in summary if a == "committed"] == [f"{MODEL}@{n}" for n in (4, 3, 2, 1)]
    moved = trail[4]
    assert (moved.previous, moved.number, moved.seq) == (2, 4, 2)
    assert moved.gate == f"accuracy 0.95 >= 0.93 of {MODEL}@2 (production)"
    assert all(e.author.host for e in trail if e.kind != "commit" or e.number == 4)
    assert len(models.audit(MODEL, limit=3)) == 3
    with pytest.raises(NotFoundError, match="dataset 'nope' does not exist"):
        models.audit("nope")


# ---------------------------------------------------------------------------- the command


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result.output

    return invoke


def test_the_commands(run: Callable[..., str], tmp_path: Path) -> None:
    for i, acc in enumerate(["0.9", "0.93", "0.91"], start=1):
        run("commit", MODEL, str(write_tree(tmp_path / f"m{i}", {"m": str(i).encode()})), "--metric", f"accuracy={acc}")
    assert run("stages", MODEL) == f"{MODEL} has no stage order\n"
    assert run("stages", MODEL, "staging", "production") == f"{MODEL}: staging → production\n"
    assert json.loads(run("stages", MODEL, "--json")) == ["staging", "production"]

    assert run("promote", f"{MODEL}@2", "staging", "-m", "candidate") == (
        f"promoted {MODEL}@2 to staging (it had no holder)\n"
    )
    assert run("promote", f"{MODEL}@2", "production", "--require", "accuracy>=") == (
        f"promoted {MODEL}@2 to production (it had no holder): accuracy >= not applied: production had no holder; "
        "held staging\n"
    )
    run("promote", f"{MODEL}@3", "staging")
    refused = run("promote", f"{MODEL}@3", "production", "--require", "accuracy>=", code=4)
    assert refused == (
        f"error: refused to promote {MODEL}@3 to production: accuracy 0.91 < 0.93 of {MODEL}@2 (production)\n"
    )
    assert "is not METRIC OP [NUMBER]" in run("promote", f"{MODEL}@3", "production", "--require", "accuracy", code=2)
    assert "no version has the metric 'acc'" in run("promote", f"{MODEL}@3", "production", "--require", "acc>=", code=2)
    assert run("promote", f"{MODEL}@2", "production") == f"{MODEL}@2 already holds production: nothing changed\n"
    promoted = json.loads(run("promote", f"{MODEL}@3", "production", "--require", "accuracy>=0.9", "--json"))
    assert (promoted["ref"], promoted["number"], promoted["previous"], promoted["written"]) == (
        f"{MODEL}@production",
        3,
        2,
        True,
    )

    assert run("untag", MODEL, "staging", "-m", "done") == f"deleted {MODEL}@staging (it pointed at {MODEL}@3)\n"
    assert "was deleted on" in run("show", f"{MODEL}@staging", code=3)
    run("untag", MODEL, "staging", code=3)
    assert [t["tag"] for t in json.loads(run("tags", MODEL, "--json"))] == ["production"]

    history = json.loads(run("tag-history", MODEL, "staging", "--json"))
    assert [(e["seq"], e["action"], e["previous"], e["number"]) for e in history] == [
        (1, "created", None, 2),
        (2, "moved", 2, 3),
        (3, "deleted", 3, None),
    ]
    assert history[0]["ref"] == f"{MODEL}@staging" and history[0]["message"] == "candidate"
    table = run("tag-history", MODEL, "staging")
    assert table.splitlines()[0].split() == ["seq", "when", "action", "from", "to", "by", "message"]
    assert "deleted" in table and "done" in table

    trail = json.loads(run("audit", MODEL, "--json"))
    assert [(e["action"], e["ref"]) for e in trail][:2] == [
        ("deleted", f"{MODEL}@staging"),
        ("moved", f"{MODEL}@production"),
    ]
    assert {e["kind"] for e in trail} == {"commit", "tag"}
    assert len(json.loads(run("audit", MODEL, "-n", "2", "--json"))) == 2
    text = run("audit", MODEL)
    assert text.splitlines()[0].split() == ["when", "event", "tag", "version", "by", "message"]
    assert "committed" in text and "2 → 3" in text
    assert "dataset 'models/chrun' does not exist" in run("stages", "models/chrun", code=3)
    assert "dataset 'models/chrun' does not exist" in run("untag", "models/chrun", "production", code=3)
    run("stages", MODEL, "--clear")
    assert run("stages", MODEL) == f"{MODEL} has no stage order\n"
    run("stages", MODEL, "a", "--clear", code=2)


def test_what_people_wrote_is_shown_as_text_and_tables_fit(run: Callable[..., str], tmp_path: Path) -> None:
    """A message is data: control sequences in it never reach the terminal (they are shown escaped), markup
    is not read, and a long message folds inside an 80-column table."""
    run("commit", MODEL, str(write_tree(tmp_path / "m", {"m": b"1"})), "--metric", "accuracy=0.9")
    hostile = "\x1b]0;pwned\x07\x1b[2J[red]rolled back[/red]"
    long = "after the incident review of the nightly pipeline run that retrained the churn model on bad data"
    run("tag", f"{MODEL}@1", "production", "-m", long)
    run("untag", MODEL, "production", "-m", hostile)
    for output in (run("tag-history", MODEL, "production"), run("audit", MODEL)):
        assert "\x1b" not in output and "\x07" not in output
        assert "[red]" in output  # printed as it is, not read as markup
        assert all(len(line) <= 80 for line in output.splitlines() if "pwned" not in line), output
    assert json.loads(run("tag-history", MODEL, "production", "--json"))[1]["message"] == hostile
