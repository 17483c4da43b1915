"""Prefect fixtures: one temporary Prefect server (prefect_test_harness) per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def dataset() -> str:
    """A dataset name no other test uses, so events and artifacts can be told apart."""
    return f"ds-{uuid.uuid4().hex[:10]}"
