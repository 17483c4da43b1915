"""The core stays free of orchestrators: importing it (or the CLI) loads neither prefect nor airflow."""

from __future__ import annotations

import subprocess
import sys


def test_core_and_cli_import_no_orchestrator() -> None:
    code = (
        "import sys, gitfree, gitfree.versioning, gitfree.cli, gitfree.testing\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'airflow'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_core_does_not_import_dvc_until_it_is_needed() -> None:
    """`gitfree --help`, refs and records stay fast: DVC is imported by the staging module only, when hashing."""
    code = "import sys, gitfree, gitfree.cli\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'dvc'))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
