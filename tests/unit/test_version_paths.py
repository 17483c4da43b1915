"""The paths a version may list (gitfree/versioning/tree.py ``validate_path``, ``validate_entries``):
relative POSIX paths that stay inside the destination, none twice, no file that is also a folder."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitfree.versioning.errors import UnsafePathError
from gitfree.versioning.models import FileEntry
from gitfree.versioning.tree import validate_entries, validate_path

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
segment = st.text(
    st.characters(exclude_characters="/\\\x00", exclude_categories=["Cs"]), min_size=1, max_size=8
).filter(lambda s: s not in (".", ".."))
safe_paths = st.lists(segment, min_size=1, max_size=5).map("/".join).filter(lambda p: p[1:2] != ":")


def entries(*paths: str) -> list[FileEntry]:
    return [FileEntry(path=p, md5=MD5, size=0) for p in paths]


@given(safe_paths)
@example("ünïcödé/日本語 ファイル.csv")
@example("spaces in name.txt")
@example("...")
@example(".hidden/..x")
def test_safe_paths_are_returned_unchanged(path: str) -> None:
    assert validate_path(path) == path


@given(safe_paths)
def test_a_safe_path_stays_inside_any_destination(path: str) -> None:
    joined = posixpath.normpath(posixpath.join("/dest", path))
    assert joined.startswith("/dest/")


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/./b",
        ".",
        "..",
        "a//b",
        "a/",
        "C:/x",
        "c:x",
        "a\\b",
        "..\\x",
        "a\x00b",
    ],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePathError, match="refusing to write anything"):
        validate_path(path)


@pytest.mark.parametrize("value", [None, 3, b"a", ["a"]])
def test_non_text_paths_are_refused(value: object) -> None:
    with pytest.raises(UnsafePathError):
        validate_path(value)


@given(st.text(max_size=30))
def test_any_text_that_passes_stays_inside_the_destination(path: str) -> None:
    try:
        validate_path(path)
    except UnsafePathError:
        return
    assert posixpath.normpath(posixpath.join("/dest", path)).startswith("/dest/")
    assert not path.startswith("/") and "\\" not in path and "\x00" not in path


@given(st.lists(safe_paths, max_size=8, unique=True))
def test_distinct_paths_without_clashes_are_accepted(paths: list[str]) -> None:
    listed = set(paths)
    clash = any(p.rpartition("/")[0] and any(p.startswith(q + "/") for q in listed) for p in paths)
    if clash:
        with pytest.raises(UnsafePathError, match="both as a file and as a directory"):
            validate_entries(entries(*paths))
    else:
        validate_entries(entries(*paths))


def test_a_path_listed_twice_is_refused() -> None:
    with pytest.raises(UnsafePathError, match="twice"):
        validate_entries(entries("a/b", "c", "a/b"))


@pytest.mark.parametrize("paths", [("a", "a/b"), ("a/b/c", "a/b"), ("x/y", "x/y/z/w")])
def test_a_file_that_is_also_a_folder_is_refused(paths: tuple[str, ...]) -> None:
    with pytest.raises(UnsafePathError, match="both as a file and as a directory"):
        validate_entries(entries(*paths))


def test_an_unsafe_entry_anywhere_refuses_the_whole_listing() -> None:
    with pytest.raises(UnsafePathError):
        validate_entries(entries("a", "b", "../c"))
    validate_entries([])
