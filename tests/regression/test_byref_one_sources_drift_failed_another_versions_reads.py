"""Two versions by reference holding the same bytes in two sources: after a process had seen both, a read of the
first went to the second's source (one place per md5, the last told), so the second's drift failed the first's
read and the error named a key of the other source. Now every place an md5 is known at is tried in turn, and
only when none holds the bytes is it an ``IntegrityError``. Found by the hostile pass over versions by reference
(issue 18)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import IntegrityError, Store


def test_a_read_takes_any_place_that_still_holds_the_bytes(make_store: Callable[..., Store], tmp_path: Path) -> None:
    a = write_tree(tmp_path / "A", {"f.txt": b"the same bytes"})
    b = write_tree(tmp_path / "B", {"g.txt": b"the same bytes"})
    writer = make_store("file")
    writer.commit("a", a, by_reference=True)
    writer.commit("b", b, by_reference=True)
    reader = make_store("file")  # a long-lived process (gitfree ui, a worker) that has seen both
    reader.show("a")
    reader.show("b")
    (b / "g.txt").unlink()
    assert reader.peek("a", "f.txt", 0, 8) == b"the same"
    assert reader.open("a", "f.txt").read() == b"the same bytes"
    (a / "f.txt").unlink()
    other = make_store("file")
    other.show("a")
    other.show("b")
    with pytest.raises(IntegrityError, match=r"g\.txt changed .*no longer exists"):
        other.open("b", "g.txt")
