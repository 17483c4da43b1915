"""``gitfree gc --dry-run`` says how many leases of dead commits a real run would remove.

Regression: a dry run counted nothing about them (``leases_removed`` is 0 when nothing is removed), so
its line said "0 commit(s) in flight" and never that stale leases were there to clean up.
``GcReport.leases_stale`` carries the count (gc.py fills it); the CLI prints it. The leases are real
records in a real store (a lease left by a dead commit is one nobody renews), and GC is the real one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import Store
from gitfree.cli import cli
from gitfree.versioning import layout, leases
from gitfree.versioning.models import GcReport


@pytest.fixture
def store_with_stale_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store (file) holding a commit in flight (its lease renewed by this process) and the leases two dead
    commits left: written once, never renewed, expired (the clock skew is 0, so they are dead at once)."""
    for name, value in {"STORE": tmp_path / "store", "CACHE_DIR": tmp_path / "cache", "CLOCK_SKEW": 0}.items():
        monkeypatch.setenv(f"GITFREE_{name}", str(value))
    store = Store()
    version = store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1", "b": b"2"}))
    for _ in range(2):
        dead = leases.Holder.new(store.backend, timedelta(seconds=0.1), dataset="ds", pointer=version.md5)
        store.backend.create(dead.key, dead.lease.model_dump_json().encode())
    live = leases.Holder.new(store.backend, timedelta(minutes=10), dataset="ds", pointer=version.md5)
    live.create()
    time.sleep(0.2)  # the two expire
    try:
        yield store
    finally:
        live.release()


def _gc(*args: str) -> str:
    result = CliRunner().invoke(cli, ["gc", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_a_dry_run_says_the_stale_leases_it_would_remove(store_with_stale_leases: Store) -> None:
    assert "1 commit in flight; 2 stale leases of dead commits would be removed" in _gc("--dry-run")
    assert json.loads(_gc("--dry-run", "--json"))["leases_stale"] == 2
    assert len(list(store_with_stale_leases.backend.list(layout.LEASES))) == 3  # a dry run removes nothing


def test_a_real_run_says_the_stale_leases_it_removed(store_with_stale_leases: Store) -> None:
    assert "2 stale leases of dead commits removed" in _gc()
    assert len(list(store_with_stale_leases.backend.list(layout.LEASES))) == 1  # the live one stays


def test_the_report_has_the_field_and_it_defaults_to_none_found() -> None:
    fields: dict[str, Any] = {
        "dry_run": True,
        "versions_kept": 3,
        "versions_deleted": [],
        "objects_kept": 9,
        "objects_deleted": 0,
        "bytes_deleted": 0,
        "objects_too_young": 0,
        "leases_live": 1,
        "leases_removed": 0,
    }
    assert "leases_stale" in GcReport.model_fields
    assert GcReport(**fields).leases_stale == 0
