# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""`gitfree lineage feat@1 --both --depth 0` prints 'made from: nothing' and 'used by: nothing recorded'
although feat@1 was made from raw@1 and model@1 from it; at --depth N the leaves look like versions made from
nothing. The JSON has no way to tell a leaf cut by the depth from a version without inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli


def test_depth_limit_is_not_shown_as_nothing(make_store: Callable[..., Store], src: Callable[[str], Path]) -> None:
    store = make_store("file")
    store.commit("raw", src("r"))
    store.commit("feat", src("f"), inputs=["raw@1"])
    store.commit("model", src("m"), inputs=["feat@1"])
    result = CliRunner().invoke(
        cli, ["--store", str(store.backend.root), "lineage", "feat@1", "--both", "--depth", "0"]
    )
    assert result.exit_code == 0
    assert "nothing" not in result.output, result.output
