"""gitfree's retry jitter drew from the ``random`` module's global generator: the user's.

A training script that seeds ``random`` for a reproducible run got another sequence whenever a commit in the
same process retried (and CI once failed in a hypothesis test that saw the global generator move under it
while a store's retry slept in another thread). gitfree now has its own generator.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from helpers import write_tree

from gitfree import Store
from gitfree.testing import Faults
from gitfree.versioning.backends import OutcomeUnknown


def test_a_commit_that_retries_leaves_the_global_random_sequence_alone(store: Store, tmp_path: Path) -> None:
    expected = random.Random(1234).random()
    random.seed(1234)
    with Faults(store) as faults:
        lost = faults.fail("create", re.compile(r"/versions/"), error=OutcomeUnknown("lost"), times=3)
        version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost.fired and version.number == 1
    assert random.random() == expected
