"""``gitfree status`` compared a step's defaults with what a version was made with by Python's ``==``, while the
key uses canonical JSON: a default changed from ``1`` to ``True`` (or ``1.0``) was "up to date", and the next
call ran. Status now compares them as the key does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import Store, step_status

SOURCE = """
from pathlib import Path
from gitfree import step

@step("feat", {{"raw": "raw"}}, store={store!r})
def featurize(raw: Path, out: Path, n={value}) -> None:
    (out / "x").write_text(str(n))
"""


@pytest.mark.parametrize("now", ["True", "1.0"])
def test_a_default_equal_in_python_but_not_in_json_is_a_change(
    now: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "store")
    store.commit("raw", write_tree(tmp_path / "raw", {"a": b"a"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "status_steps.py").write_text(SOURCE.format(store=store.url, value=1))
    sys.modules.pop("status_steps", None)
    import status_steps  # type: ignore[import-not-found]

    status_steps.featurize()
    (tmp_path / "status_steps.py").write_text(SOURCE.format(store=store.url, value=now))
    sys.modules.pop("status_steps", None)
    (status,) = step_status(store, ["feat"])
    assert not status.up_to_date
    assert list(status.params) == ["n"]
