# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""`gitfree stale` when an input's store cannot be opened (an unknown scheme, a malformed URL) or does not
answer: 'nothing is stale (every dataset checked)' and exit 0, with no warning at all for a store that cannot
be opened. A `gitfree stale || rebuild` gate then passes a version it could not judge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli
from gitfree.versioning.models import InputRef


@pytest.mark.parametrize("other", ["hdfs://team-b/raw", "gs://team-b/raw"], ids=["unknown-scheme", "no-credentials"])
def test_stale_does_not_say_fresh_when_it_could_not_check(
    make_store: Callable[..., Store], src: Callable[[str], Path], other: str
) -> None:
    store = make_store("file")
    store.commit("model", src("m"), inputs=[InputRef(dataset="raw", number=1, store=other)])
    result = CliRunner().invoke(cli, ["--store", str(store.backend.root), "stale"])
    assert not (result.exit_code == 0 and "nothing is stale" in result.output), result.output
