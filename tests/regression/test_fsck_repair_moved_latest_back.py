"""``fsck --repair`` moved ``latest.json`` backwards.

It judged the hint broken, then rewrote it to the head it had seen, with the etag it read just before
writing: a commit that advanced the hint in between (to a newer version) was overwritten by an older
one. Commits and GC never move the hint back; the repair must not either.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import write_tree

from gitfree import Store
from gitfree.testing import Faults
from gitfree.versioning import layout
from gitfree.versioning.models import Latest


def test_fsck_repair_never_moves_the_hint_back(make_store: Callable[..., Store], tmp_path: Path) -> None:
    store = make_store("s3")
    store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1"}))
    key = layout.latest_key("ds")
    store.backend.put(key, b"not json")  # broken: fsck --repair rewrites it
    other = Store(store.url, cache_dir=tmp_path / "other-cache", settings=store.settings)
    with Faults(store) as faults:
        # fsck judged the hint (the first read); before its repair writes (the second), a writer commits @2
        race = faults.call(
            "get", key, lambda _: other.commit("ds", write_tree(tmp_path / "v2", {"a": b"2"})), skip=1, times=1
        )
        store.fsck(repair=True)
    assert race.fired, "the race was not staged"
    latest = Latest.model_validate_json(store.backend.get(key)[0])
    assert latest.number == 2, f"fsck --repair moved latest.json back to @{latest.number}"
    assert store.fsck().ok
