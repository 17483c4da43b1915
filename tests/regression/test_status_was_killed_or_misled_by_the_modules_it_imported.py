"""``gitfree status`` imports the step a record names to compare its code: a module calling ``sys.exit`` or
parsing ``sys.argv`` at import ended the whole command, one printing at import broke ``--json``, a module
``__getattr__`` that raised was a crash, and a record could make it import any module on the path. Now only
modules in the current directory or on PYTHONPATH are imported, their output goes to stderr, and whatever the
import raises is the reason that step could not be compared."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree
from pydantic import JsonValue

from gitfree import Store
from gitfree.cli import cli

MODULES = {
    "m_exit": "import sys\nsys.exit(3)\n",
    "m_argv": 'import argparse\nargparse.ArgumentParser().parse_args(["--no-such-option"])\n',
    "m_print": "print('hello from an import side effect')\n",
    "m_getattr": "def __getattr__(name):\n    raise RuntimeError('no attributes here')\n",
}


def test_odd_modules_and_foreign_ones_are_reasons_not_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "store")
    here = tmp_path / "project"
    here.mkdir()
    for name, source in MODULES.items():
        (here / f"{name}.py").write_text(source)
    names = [*MODULES, "this", "antigravity"]  # stdlib modules a forged record could name: never imported
    for i, module in enumerate(names):
        meta: dict[str, JsonValue] = {
            "step": {"name": f"{module}:featurize", "key": "0" * 64, "code": "0", "code_version": None}
        }
        store.commit(f"d{i}", write_tree(tmp_path / f"src{i}", {"x": b"x"}), metadata=meta)
    monkeypatch.chdir(here)
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    for module in ("this", "antigravity", *MODULES):
        sys.modules.pop(module, None)
    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    notes = {item["ref"]: item["note"] for item in json.loads(result.stdout)}
    assert "this" not in sys.modules and "antigravity" not in sys.modules
    assert "cannot import m_exit (SystemExit: 3)" in notes["d0@1"]
    assert "cannot import m_argv (SystemExit: 2)" in notes["d1@1"]
    assert "m_print has no featurize" in notes["d2@1"]
    assert "cannot import m_getattr (RuntimeError: no attributes here)" in notes["d3@1"]
    assert "this is not in the current directory or on PYTHONPATH" in notes["d4@1"]
    assert "antigravity is not in the current directory or on PYTHONPATH" in notes["d5@1"]
