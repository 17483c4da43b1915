"""Ingesting an ``s3://`` source dropped the store's session token and region.

Issue 14: ``gitfree.flows.ingest`` mapped the store's settings to s3fs's arguments itself (one of four
credential-name mappings), passing the key and secret of temporary credentials without their session
token (S3 refuses such a key) and leaving out the region. Now ``StoreSettings.s3fs_options`` is the
mapping, and it passes both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

import s3fs

from gitfree import Store
from gitfree.flows import fetch_source


class _Recorded(Exception):
    pass


def test_an_s3_source_is_read_with_the_stores_token_and_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def record(**options: Any) -> None:
        seen.append(options)
        raise _Recorded

    monkeypatch.setattr(s3fs, "S3FileSystem", record)
    store = Store(
        (tmp_path / "store").as_uri(),
        cache_dir=tmp_path / "cache",
        endpoint_url="http://127.0.0.1:9",
        access_key_id="ASIATEMPORARY",
        secret_access_key="s3cret",
        session_token="t0ken",
        region="eu-west-1",
    )
    with pytest.raises(_Recorded):
        fetch_source("s3://raw/sensors", tmp_path / "staging", store)
    assert seen == [
        {
            "endpoint_url": "http://127.0.0.1:9",
            "key": "ASIATEMPORARY",
            "secret": "s3cret",
            "token": "t0ken",
            "client_kwargs": {"region_name": "eu-west-1"},
        }
    ]


def test_source_options_still_replace_the_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a regression: the guard that ``source_options`` are used as given."""
    seen: list[dict[str, Any]] = []

    def record(**options: Any) -> None:
        seen.append(options)
        raise _Recorded

    monkeypatch.setattr(s3fs, "S3FileSystem", record)
    store = Store((tmp_path / "store").as_uri(), cache_dir=tmp_path / "cache", access_key_id="A", secret_access_key="S")
    with pytest.raises(_Recorded):
        fetch_source("s3://raw/sensors", tmp_path / "staging", store, {"anon": True})
    assert seen == [{"anon": True}]
