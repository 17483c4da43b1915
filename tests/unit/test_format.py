"""What people read: sizes and counts in the CLI, the flows' lines, the logs and the web view."""

from __future__ import annotations

import pytest

from gitfree.versioning import format_count, format_size


@pytest.mark.parametrize(("n", "text"), [(0, "0 files"), (1, "1 file"), (2, "2 files"), (100000, "100000 files")])
def test_a_count_is_singular_only_for_one(n: int, text: str) -> None:
    assert format_count(n, "file") == text


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (1048575, "1.0 MiB"), (3 * 2**30, "3.0 GiB")]
)
def test_a_size_is_in_binary_units(n: int, text: str) -> None:
    assert format_size(n) == text
