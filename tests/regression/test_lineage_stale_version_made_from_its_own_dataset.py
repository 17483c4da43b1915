# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""An incremental dataset (each version made from the previous one: append today's rows to table@N-1) is
always 'stale': its own newest version counts as the newer input. `gitfree stale` exits 8 forever."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli


def test_a_version_made_from_the_previous_version_of_its_dataset_is_not_stale(
    make_store: Callable[..., Store], src: Callable[[str], Path]
) -> None:
    store = make_store()
    store.commit("table", src("day 1"))
    store.commit("table", src("day 1 + day 2"), inputs=["table@1"])
    assert store.stale() == []  # observed: [table@2 was made from table@1; table is now at @2]


def test_gitfree_stale_exit_code_for_an_incremental_dataset(
    make_store: Callable[..., Store], src: Callable[[str], Path]
) -> None:
    store = make_store("file")
    store.commit("table", src("day 1"))
    store.commit("table", src("day 1 + day 2"), inputs=["table@1"])
    result = CliRunner().invoke(cli, ["--store", str(store.backend.root), "stale"])
    assert result.exit_code == 0, result.output  # observed 8: "table@2 was made from table@1; table is now at @2"


def test_a_version_made_from_the_newest_input_and_an_older_one_is_not_stale(
    make_store: Callable[..., Store], src: Callable[[str], Path]
) -> None:
    """A diff/backfill job made from raw@1 and raw@2 (the newest) already used the newest raw."""
    store = make_store()
    store.commit("raw", src("raw 1"))
    store.commit("raw", src("raw 2"))
    store.commit("drift", src("drift report"), inputs=["raw@1", "raw@2"])
    assert store.stale() == []
