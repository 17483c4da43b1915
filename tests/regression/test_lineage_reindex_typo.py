# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""`gitfree reindex typo` exits 0 saying 'wrote 0 and removed 0 lineage edge(s); 0 edge(s) for 0
version(s)'; `gitfree fsck typo` and `gitfree stale typo` are NotFoundError (exit 3), 'so a typo cannot pass
as clean'."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli


def test_reindex_of_a_dataset_that_does_not_exist(make_store: Callable[..., Store], src: Callable[[str], Path]) -> None:
    store = make_store("file")
    store.commit("raw", src("r"))
    store.commit("model", src("m"), inputs=["raw@1"])
    run = lambda *args: CliRunner().invoke(cli, ["--store", str(store.backend.root), *args])  # noqa: E731
    assert run("fsck", "modle").exit_code == 3
    assert run("stale", "modle").exit_code == 3
    result = run("reindex", "modle")
    assert result.exit_code == 3, result.output
