"""Found by a hostile user: a ``latest.json`` that disagrees with the records changed what ``ds`` meant
(another version's bytes under the newest number; a number that does not exist, after which the next
commit skipped numbers), one bad tag blocked ``log`` and ``tags`` of its dataset, and Unicode digits
(Arabic-Indic one, superscript three) passed for version numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import InputError, Store
from gitfree.versioning import layout


def _three(store: Store, tmp_path: Path) -> None:
    for i in range(1, 4):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"a": f"v{i}".encode()}))


def test_a_hint_naming_other_content_is_not_believed(store: Store, tmp_path: Path) -> None:
    _three(store, tmp_path)
    key = layout.latest_key("ds")
    hint = json.loads(store.backend.get(key)[0])
    hint["version"]["pointer"] = json.loads(store.show("ds@1").pointer.model_dump_json())
    store.backend.put(key, json.dumps(hint).encode())
    assert store.show("ds").md5 == store.show("ds@3").md5
    assert read_tree(store.pull("ds", tmp_path / "out")) == {"a": b"v3"}


def test_a_hint_naming_a_number_that_does_not_exist_is_not_believed(store: Store, tmp_path: Path) -> None:
    _three(store, tmp_path)
    key = layout.latest_key("ds")
    hint = json.loads(store.backend.get(key)[0])
    hint["number"] = hint["version"]["number"] = 9
    store.backend.put(key, json.dumps(hint).encode())
    assert store.show("ds").number == 3
    assert store.commit("ds", write_tree(tmp_path / "v4", {"a": b"v4"})).number == 4


def test_one_bad_tag_hides_no_other(store: Store, tmp_path: Path) -> None:
    _three(store, tmp_path)
    store.tag("ds@2", "good")
    store.backend.put(layout.tag_key("ds", "bad"), b"[]")
    assert [v.number for v in store.log("ds")] == [3, 2, 1]
    assert [t.tag for t in store.tags("ds")] == ["good"]


@pytest.mark.parametrize("ref", ["ds@\u0661", "ds@\u00b3", "ds@latest~\u0661", "ds@\u0663"])
def test_only_ascii_digits_are_numbers(store: Store, tmp_path: Path, ref: str) -> None:
    _three(store, tmp_path)
    with pytest.raises(InputError, match="malformed ref"):
        store.show(ref)


def test_the_store_or_the_cache_is_not_committed(tmp_path: Path) -> None:
    """Committing the store into itself (or the worker cache) snapshotted a tree gitfree was writing into."""
    from gitfree import NotFoundError

    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    for source in (tmp_path / "store", tmp_path / "store" / "files", tmp_path / "cache", tmp_path):
        with pytest.raises(InputError, match=r"lies inside the (store|worker cache)"):
            store.commit("self", source)
    with pytest.raises(NotFoundError, match="no file or folder 'nope'"):
        store.pull("ds", tmp_path / "out", paths=["nope/"])
    with pytest.raises(InputError, match="not a path inside a version"):
        store.pull("ds", tmp_path / "out", paths=["../"])
