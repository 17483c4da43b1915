"""Prefect fixtures: one temporary Prefect server (prefect_test_harness) per test process."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")


@pytest.fixture(scope="session", autouse=True)
def prefect_server(prefect_harness: None) -> None:
    """The process's temporary Prefect server (tests/conftest.py's ``prefect_harness``), for every test here."""


@pytest.fixture
def dataset() -> str:
    """A dataset name no other test uses, so events and artifacts can be told apart."""
    return f"ds-{uuid.uuid4().hex[:10]}"
