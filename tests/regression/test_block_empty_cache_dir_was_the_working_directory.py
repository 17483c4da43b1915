"""A ``GitfreeStore`` block with an empty ``cache_dir`` used the working directory as the worker cache.

Issue 14: the block handed its fields to ``Store`` as they were, and ``cache_dir=""`` is ``Path("")``:
the directory the worker happened to run in, which then filled with ``files/md5/...``. The field says
"empty: GITFREE_CACHE_DIR or the user's cache dir"; now every empty field is unset, as in the Airflow
hook (``StoreSettings.from_aws``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from gitfree.tasks import GitfreeStore


def test_an_empty_cache_dir_is_the_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "configured-cache"))
    block = GitfreeStore(url=(tmp_path / "store").as_uri(), cache_dir="", endpoint_url="", region="")
    store = block.get_store()
    assert store.cache_dir == tmp_path / "configured-cache"
    assert list(work.iterdir()) == []
