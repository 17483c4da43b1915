"""What a browser of a store (the web view) asks of the core, on SeaweedFS and file://: the heads of many
datasets at once, a page of the history below a number, every tag write that touched a version, the .dvc
file as text, and a listing parsed and checked once per process."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import FileEntry, InputError, NotFoundError, Store, Tree
from gitfree.versioning import objects


def _commit(store: Store, dataset: str, tmp_path: Path, n: int) -> None:
    for i in range(n):
        write_tree(tmp_path / dataset, {"f.txt": f"{dataset} {i}".encode()})
        store.commit(dataset, tmp_path / dataset, message=f"v{i + 1}")


def test_heads_of_many_datasets_at_once(store: Store, tmp_path: Path) -> None:
    _commit(store, "a", tmp_path, 2)
    _commit(store, "b/c", tmp_path, 1)
    heads = store.heads(["a", "b/c", "nothing"])
    assert {k: v.ref if v else None for k, v in heads.items()} == {"a": "a@2", "b/c": "b/c@1", "nothing": None}
    assert store.heads([]) == {}
    with pytest.raises(InputError, match="invalid dataset name 'Bad'"):
        store.heads(["Bad"])


def test_log_before_a_number_is_the_next_page(store: Store, tmp_path: Path) -> None:
    _commit(store, "ds", tmp_path, 5)
    assert [v.number for v in store.log("ds", 2)] == [5, 4]
    assert [v.number for v in store.log("ds", 2, before=4)] == [3, 2]
    assert [v.number for v in store.log("ds", before=2)] == [1]
    assert store.log("ds", before=1) == []
    for bad in (0, -1, True, "3"):
        with pytest.raises(InputError, match="before must be a version number"):
            store.log("ds", before=bad)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.log("nope", before=3)


def test_tag_events_of_a_version(store: Store, tmp_path: Path) -> None:
    _commit(store, "ds", tmp_path, 3)
    store.tag("ds@1", "prod", message="first")
    store.tag("ds@3", "prod", move=True, message="third")
    store.tag("ds@2", "old")
    store.untag("ds", "old")
    events = store.tag_events("ds")
    assert [(e.tag, e.action, e.previous, e.number) for e in events] == [
        ("old", "created", None, 2),
        ("old", "deleted", 2, None),
        ("prod", "created", None, 1),
        ("prod", "moved", 1, 3),
    ]
    assert [(e.tag, e.action) for e in store.tag_events("ds", 1)] == [("prod", "created"), ("prod", "moved")]
    assert [(e.tag, e.action) for e in store.tag_events("ds", 2)] == [("old", "created"), ("old", "deleted")]
    assert store.tag_events("ds", 9) == []
    with pytest.raises(NotFoundError, match="dataset 'nope' does not exist"):
        store.tag_events("nope")


def test_the_dvc_file_is_the_text_export_writes(store: Store, tmp_path: Path) -> None:
    _commit(store, "images", tmp_path, 1)
    text = store.dvc_file("images@1")
    assert text == (store.export_dvc("images@1", tmp_path / "images.dvc")).read_text()
    assert text.startswith(f"# gitfree: images@1 from {store.url} (version id ") and '  path: "images"' in text


def test_a_listing_is_parsed_and_checked_once_per_process(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "d", {f"x/{i}.txt": str(i).encode() for i in range(20)})
    version = store.commit("ds", tmp_path / "d")
    parsed: list[str] = []
    real = objects.parse_listing

    def counting(oid: str, raw: bytes) -> list[FileEntry]:  # the real parser, counted
        parsed.append(oid)
        return real(oid, raw)

    monkeypatch.setattr(objects, "parse_listing", counting)
    first = store.files(version)
    first.clear()  # a caller's list is its own
    assert len(store.files(version)) == 20 and len(store.files("ds@1", sizes=True)) == 20
    assert store.open(version, "x/3.txt").read() == b"3"
    assert parsed == [version.md5]
    # Only the last few are kept: with room for one, another listing pushes it out.
    monkeypatch.setattr(objects, "LISTINGS_KEPT", (1, 400_000))
    write_tree(tmp_path / "e", {"y.txt": b"y"})
    other = store.commit("other", tmp_path / "e")
    store.files(other)
    store.files(version)  # the one kept was dropped for other's: parsed again
    assert parsed == [version.md5, other.md5, version.md5]


def test_open_file_and_peek_find_a_path_without_building_the_tree_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "d", {f"x/{i}.txt": str(i).encode() for i in range(20)})
    version = store.commit("ds", tmp_path / "d")
    built: list[int] = []
    real = Tree.build.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Tree], entries: list[FileEntry]) -> Tree:
        built.append(1)
        return real(cls, entries)  # type: ignore[no-any-return]

    monkeypatch.setattr(Tree, "build", classmethod(counting))
    assert store.open(version, "x/3.txt").read() == b"3"
    assert store.open(version, "x/4.txt").read() == b"4"
    assert store.file(version, "x/5.txt").size == 1
    assert store.peek(version, "x/6.txt") == b"6"
    with pytest.raises(NotFoundError, match=r"did you mean 'x/7\.txt'"):
        store.open(version, "x/7.txtx")
    assert built == [1]
