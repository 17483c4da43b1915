"""Fixtures of the regression tests ported from the hostile passes (beside tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(params=["file", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    """The kind of store for ``make_store(kind)``."""
    return str(request.param)


@pytest.fixture
def src(tmp_path: Path) -> Callable[[str], Path]:
    """``src('content')``: a new directory holding one file with that content."""
    counter = iter(range(10_000))

    def make(content: str) -> Path:
        path = tmp_path / f"src-{next(counter)}"
        path.mkdir()
        (path / "data.txt").write_text(content)
        return path

    return make
