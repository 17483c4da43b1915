# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""`gitfree lineage` (the default tree) fails with 'unexpected RecursionError' (exit 1) on a chain of about
1000 versions: a table made daily from its previous version for three years. --json, dot and mermaid work.
The records are written directly (exactly what 1200 commits with inputs=[table@N-1] write), to save time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli
from gitfree.versioning import layout
from gitfree.versioning.models import InputRef


def test_lineage_tree_of_a_long_chain(make_store: Callable[..., Store], src: Callable[[str], Path]) -> None:
    store = make_store("file")
    first = store.commit("table", src("day 1"))
    n = 1200
    for number in range(2, n + 1):
        record = first.model_copy(
            update={"number": number, "parent": number - 1, "inputs": [InputRef(dataset="table", number=number - 1)]}
        )
        store.backend.put(layout.version_key("table", number), record.model_dump_json(exclude={"created"}).encode())
    assert len(store.lineage(f"table@{n}").nodes) == n  # the library is fine
    result = CliRunner().invoke(cli, ["--store", str(store.backend.root), "lineage", f"table@{n}"])
    assert result.exit_code == 0, result.output[-300:]
