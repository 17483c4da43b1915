"""A step reading a module constant or a closure value (``SCALE = 10``) kept returning the version made with
the old value after it changed: neither was in the key. Constants (numbers, strings, booleans, None, tuples of
them) and functions of the same module it calls are now part of its code's fingerprint."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

from helpers import write_tree

from gitfree import Store

_n = itertools.count()
SOURCE = """
from pathlib import Path
from gitfree import step

SCALE = {scale}
COLUMNS = ("a", "b")

def helper(x):
    return x * {factor}

def make(store, offset):
    @step("scaled", {{"raw": "raw"}}, store=store)
    def scale(raw: Path, out: Path) -> None:
        (out / "x").write_text(str(helper(SCALE) + offset) + ",".join(COLUMNS))
    return scale
"""


def _module(tmp_path: Path, scale: int, factor: int = 1) -> ModuleType:
    path = tmp_path / f"steps_{next(_n)}.py"
    path.write_text(SOURCE.format(scale=scale, factor=factor))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_changed_constant_closure_value_or_helper_runs_the_step_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.commit("raw", write_tree(tmp_path / "raw", {"a.csv": b"x"}))
    first = _module(tmp_path, 10).make(store, 0)()
    assert _module(tmp_path, 10).make(store, 0)().ref == first.ref  # the same code and values: up to date
    assert _module(tmp_path, 20).make(store, 0)().ref == "scaled@2"  # SCALE changed
    assert _module(tmp_path, 20).make(store, 5)().ref == "scaled@3"  # a closure value changed
    assert _module(tmp_path, 20, factor=2).make(store, 5)().ref == "scaled@4"  # a helper it calls changed
    assert store.open("scaled@4", "x").read() == b"45a,b"
