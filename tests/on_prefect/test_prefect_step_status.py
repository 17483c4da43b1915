"""``gitfree status`` finds a step that a Prefect step task wraps (its record names the task's module and name)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gitfree import Step
from gitfree.versioning.steps import find_step


def test_status_finds_the_step_inside_a_prefect_step_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flow_steps.py").write_text(
        "from pathlib import Path\nimport gitfree.tasks\n\n"
        '@gitfree.tasks.step("features", inputs={"raw": "raw@latest"})\n'
        "def featurize(raw: Path, out: Path, window: int = 7) -> None:\n"
        "    (out / 'f').write_text(str(window))\n"
    )
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("flow_steps", None)
    found = find_step("flow_steps:featurize")
    assert isinstance(found, Step), found
    assert found.name == "flow_steps:featurize"
    assert find_step("gitfree.flows.pipeline:featurize").name == "gitfree.flows.pipeline:featurize"  # type: ignore[union-attr]
