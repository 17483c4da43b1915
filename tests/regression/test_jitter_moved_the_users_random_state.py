"""gitfree's retry jitter drew from the ``random`` module's global generator: the user's.

A training script that seeds ``random`` for a reproducible run got another sequence whenever a commit in the
same process retried (and CI once failed in a hypothesis test that saw the global generator move under it
while a store's retry slept in another thread). gitfree now has its own generator.

The test watches the module's functions for calls from gitfree's own code, rather than comparing the global
sequence: a fresh clone's run once failed that comparison because another library's thread in the same test
process (an emulator client started by an earlier test) drew from the global generator meanwhile.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree

from gitfree import Store
from gitfree.testing import Faults
from gitfree.versioning.backends import OutcomeUnknown

_GLOBAL = ("random", "uniform", "randint", "randrange", "choice", "choices", "shuffle", "sample", "gauss", "seed")


def test_a_commit_that_retries_leaves_the_global_random_sequence_alone(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    callers: list[str] = []

    def watched(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            module = str(sys._getframe(1).f_globals.get("__name__", ""))
            if module == "gitfree" or module.startswith("gitfree."):
                callers.append(f"{module} called random.{name}")
            return real(*args, **kwargs)

        return call

    for name in _GLOBAL:
        monkeypatch.setattr(random, name, watched(name, getattr(random, name)))
    with Faults(store) as faults:
        lost = faults.fail("create", re.compile(r"/versions/"), error=OutcomeUnknown("lost"), times=3)
        version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost.fired and version.number == 1
    assert callers == []
