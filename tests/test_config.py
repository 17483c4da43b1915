"""Where a store and the worker cache are when nothing, or only the environment, is configured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import Store
from gitfree.testing import SeaweedFS
from gitfree.versioning.backends import FileBackend, S3Backend


def test_default_store_is_a_local_directory(tmp_path: Path) -> None:
    store = Store()
    assert isinstance(store.backend, FileBackend)
    assert store.url.startswith("file://")
    assert store.url == (Path(os.environ["XDG_DATA_HOME"]) / "gitfree" / "store").as_uri()
    assert store.cache_dir == Path(os.environ["XDG_CACHE_HOME"]) / "gitfree"
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert Store().show("ds").number == 1


def test_xdg_cache_home_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Store().cache_dir == tmp_path / "xdg" / "gitfree"
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "explicit"))
    assert Store().cache_dir == tmp_path / "explicit"
    assert Store(cache_dir=tmp_path / "arg").cache_dir == tmp_path / "arg"


def test_environment_configures_s3(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITFREE_STORE", s3_url)
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    store = Store(cache_dir=tmp_path / "c")
    assert isinstance(store.backend, S3Backend)
    assert store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"})).number == 1


def test_standard_aws_chain(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_* variables and AWS_ENDPOINT_URL_S3 work without any GITFREE_* setting, for the manifest and the objects."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", seaweedfs.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = Store(s3_url, cache_dir=tmp_path / "c")
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert Store(s3_url, cache_dir=tmp_path / "c2").pull("ds", tmp_path / "out").joinpath("a").read_bytes() == b"1"


def test_aws_profile(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[ci]\naws_access_key_id = {seaweedfs.access_key}\naws_secret_access_key = {seaweedfs.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    store = Store(s3_url, cache_dir=tmp_path / "c", profile="ci", endpoint_url=seaweedfs.endpoint)
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert (
        Store(s3_url, cache_dir=tmp_path / "c2", profile="ci", endpoint_url=seaweedfs.endpoint)
        .pull("ds", tmp_path / "o")
        .is_dir()
    )


def test_file_url_and_plain_path_are_the_same_store(tmp_path: Path) -> None:
    a = Store((tmp_path / "st").as_uri(), cache_dir=tmp_path / "c")
    b = Store(str(tmp_path / "st"), cache_dir=tmp_path / "c")
    assert a.url == b.url
    a.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert b.show("ds").number == 1
