"""The unit tier: pure logic, no SeaweedFS, no Prefect or Airflow server, no network; seconds in all.

``make unit`` runs it alone; the default suite (``make pytest``) runs it with everything else. A test
here that asks for a server fixture is refused at collection, and one that starts a SeaweedFS
anyway fails: such a test belongs beside the other tests in ``tests/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitfree.testing import SeaweedFS

HERE = Path(__file__).parent
_SERVER_FIXTURES = {"seaweedfs", "s3_url", "make_store", "store", "s3_store"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        wanted = _SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if wanted:
            raise pytest.UsageError(
                f"{item.nodeid} is in the unit tier but uses {sorted(wanted)}: move it out of tests/unit"
            )


@pytest.fixture(autouse=True)
def _no_seaweedfs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: SeaweedFS) -> SeaweedFS:
        raise AssertionError("a unit test started SeaweedFS: move it out of tests/unit")

    monkeypatch.setattr(SeaweedFS, "start", refuse)
