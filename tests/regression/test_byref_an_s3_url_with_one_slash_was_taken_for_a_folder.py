"""``gitfree commit ds s3:/bucket/prefix --by-reference`` (one slash) was taken for a relative folder and answered
"the source file:///CWD/s3:/bucket/prefix/ is not a folder", naming a path the user never wrote. Now a source
that looks like a URL without its '://' and is no existing path says so. Found by the hostile pass over versions
by reference (issue 18)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import Store
from gitfree.cli import cli


@pytest.mark.parametrize("typo", ["s3:/bucket/prefix", "s3:bucket/prefix", "file:/shared/images", "S3:/b/p/"])
def test_a_url_missing_its_slashes_is_one_line_naming_what_was_written(
    typo: str, make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = make_store("file")
    args = ["--store", store.url, "--cache-dir", str(store.cache_dir)]
    result = CliRunner().invoke(cli, [*args, "commit", "ds", typo, "--by-reference"])
    assert result.exit_code == 2, result.output
    assert result.output == f"error: the source {typo!r} is neither a folder nor a URL; write a URL with '://' " + (
        "(s3://BUCKET/PREFIX/, file:///PATH) or the path of a folder\n"
    )
    assert str(tmp_path) not in result.output


def test_a_folder_whose_name_has_a_colon_is_still_a_folder(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "run:1", {"a.txt": b"a"})
    assert make_store("file").commit("ds", "run:1", by_reference=True).number == 1
