"""``gitfree gc --dry-run`` says how many leases of dead commits a real run would remove.

Regression: a dry run counted nothing about them (``leases_removed`` is 0 when nothing is removed), so
its line said "0 commit(s) in flight" and never that stale leases were there to clean up.
``GcReport.leases_stale`` carries the count (gc.py fills it); the CLI prints it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli
from gitfree.versioning.models import GcReport


def _report(dry_run: bool, **counts: Any) -> GcReport:
    fields: dict[str, Any] = {
        "dry_run": dry_run,
        "versions_kept": 3,
        "versions_deleted": [],
        "objects_kept": 9,
        "objects_deleted": 0,
        "bytes_deleted": 0,
        "objects_too_young": 0,
        "leases_live": 1,
        "leases_removed": 0,
        **counts,
    }
    return GcReport(**fields)


@pytest.fixture
def gc_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))

    def run(report: GcReport, *args: str) -> str:
        monkeypatch.setattr(Store, "gc", lambda self, **options: report)
        result = CliRunner().invoke(cli, ["gc", *args])
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    return run


def test_a_dry_run_says_the_stale_leases_it_would_remove(gc_says) -> None:  # type: ignore[no-untyped-def]
    line = gc_says(_report(True, leases_stale=2), "--dry-run")
    assert "1 commit(s) in flight; 2 stale lease(s) of dead commits would be removed" in line
    assert json.loads(gc_says(_report(True, leases_stale=2), "--dry-run", "--json"))["leases_stale"] == 2


def test_a_real_run_says_the_stale_leases_it_removed(gc_says) -> None:  # type: ignore[no-untyped-def]
    line = gc_says(_report(False, leases_removed=2, leases_stale=2))
    assert "2 stale lease(s) of dead commits removed" in line


def test_the_report_has_the_field_and_it_defaults_to_none_found() -> None:
    assert "leases_stale" in GcReport.model_fields
    assert _report(True).leases_stale == 0
