"""A server that never answers the record PUT: the commit blames "other writers" for what was lost answers.

Seen from the CLI through a proxy that sat on every PUT of datasets/ds/versions/: ``gitfree commit`` ran 668 s
(100 attempts of 3 x 2.5 s timeouts plus jitter) and then said "could not commit to 'ds' after 100 attempts:
other writers kept taking the next version number". Nobody else wrote; every attempt's outcome was unknown
and nothing landed (the number stayed free). The message sends the user looking for competing writers
instead of at the server (docs/design.md I6/I7: a commit says what it did not do, one clear line).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import GitfreeError, Store
from gitfree.testing import Faults, OutcomeUnknown
from gitfree.versioning.config import StoreSettings


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_every_record_write_lost_is_not_reported_as_other_writers(
    make_store: Callable[..., Store], tmp_path: Path, kind: str
) -> None:
    store = make_store(kind, settings=StoreSettings(commit_attempts=5))
    src = write_tree(tmp_path / "src", {"a": b"1"})
    with Faults(store) as faults:
        lost = faults.fail("create", re.compile(r"/versions/"), error=OutcomeUnknown, times=None)
        with pytest.raises(GitfreeError) as caught:
            store.commit("ds", src)
    assert len(lost.fired) == 5 and set(lost.fired) == {"datasets/ds/versions/000000000001.json"}
    assert "other writers" not in str(caught.value), str(caught.value)
