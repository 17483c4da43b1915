"""Every mistake a user can make gets a GitfreeError that says what to do, and loses nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import ALL_KINDS, REMOTE_KINDS, Servers, read_tree, write_tree

from gitfree import ConfigError, InputError, NotFoundError, Store
from gitfree.testing import SeaweedFS
from gitfree.versioning.config import StoreSettings

pytestmark = pytest.mark.kinds(*ALL_KINDS)


def test_missing_and_empty_sources(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        store.commit("ds", tmp_path / "nope")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="holds no files"):
        store.commit("ds", tmp_path / "empty")
    assert store.datasets() == []


def test_bad_names(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a": b"1"})
    for name in ("Images", "a b", "../x", "x/versions", ""):
        with pytest.raises(InputError):
            store.commit(name, src)
    store.commit("ds", src)
    for tag in ("123", "latest", "Prod"):
        with pytest.raises(InputError):
            store.tag("ds@1", tag)


def test_not_found_says_what_exists(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no datasets yet"):
        store.show("images")
    with pytest.raises(NotFoundError, match="no datasets yet"):
        store.log("images")
    store.commit("images", write_tree(tmp_path / "src", {"a": b"1"}))
    with pytest.raises(NotFoundError, match="it has: images"):
        store.show("imagez@3")
    with pytest.raises(NotFoundError, match="has version 1"):
        store.pull("images@5", tmp_path / "dest")
    with pytest.raises(NotFoundError, match="no tags"):
        store.show("images@prod")
    assert not (tmp_path / "dest").exists()


def test_unknown_scheme() -> None:
    with pytest.raises(ConfigError, match="unknown scheme 'hdfs'"):
        Store("hdfs://bucket/x")


@pytest.mark.parametrize("kind", REMOTE_KINDS)
def test_missing_bucket(servers: Servers, tmp_path: Path, kind: str) -> None:
    store = Store(f"{kind}://no-such-bucket/x", cache_dir=tmp_path / "cache", **servers.options(kind))
    with pytest.raises(ConfigError, match="'no-such-bucket' does not exist"):
        store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    with pytest.raises(ConfigError, match="does not exist"):
        store.datasets()


def test_wrong_credentials(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    store = Store(
        s3_url,
        cache_dir=tmp_path / "cache",
        endpoint_url=seaweedfs.endpoint,
        access_key_id=seaweedfs.access_key,
        secret_access_key="wrong-secret",
    )
    with pytest.raises(ConfigError, match="denied access") as info:
        store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert "wrong-secret" not in str(info.value)


def test_missing_credentials(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    store = Store(s3_url, cache_dir=tmp_path / "cache", endpoint_url=seaweedfs.endpoint)
    with pytest.raises(ConfigError, match="no S3 credentials"):
        store.datasets()
    with pytest.raises(ConfigError, match="both an access key id and a secret"):
        Store(s3_url, endpoint_url=seaweedfs.endpoint, access_key_id="only-the-id")


@pytest.mark.parametrize(
    ("kind", "service", "credentials"),
    [
        ("s3", "S3", {"access_key_id": "a", "secret_access_key": "b"}),
        ("az", "Azure", {"azure_account_name": "acct", "azure_account_key": "S2V5"}),
        ("gs", "Google Cloud Storage", {}),
    ],
)
def test_unreachable_endpoint(tmp_path: Path, kind: str, service: str, credentials: dict[str, str]) -> None:
    from gitfree.testing import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = StoreSettings.model_validate({"endpoint_url": endpoint, "retries": 0, **credentials})
    store = Store(f"{kind}://box/x", cache_dir=tmp_path / "cache", settings=settings)
    with pytest.raises(ConfigError, match=f"cannot reach the {service} endpoint"):
        store.datasets()


def test_missing_profile(s3_url: str) -> None:
    with pytest.raises(ConfigError, match="profile 'nope' is not configured"):
        Store(s3_url, profile="nope")


def test_destination_with_other_files_is_kept(make_store: Callable[..., Store], tmp_path: Path) -> None:
    store = make_store("s3")
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    dest = write_tree(tmp_path / "dest", {"keep/me.txt": b"mine"})
    with pytest.raises(InputError, match="holds other data"):
        store.pull("ds", dest)
    assert read_tree(dest) == {"keep/me.txt": b"mine"}
    file_dest = tmp_path / "file"
    file_dest.write_bytes(b"mine")
    with pytest.raises(InputError, match="holds other data"):
        store.pull("ds", file_dest)
    assert file_dest.read_bytes() == b"mine"


def test_missing_path_in_partial_pull(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a/b": b"1"}))
    with pytest.raises(NotFoundError, match="no file or folder 'zzz'"):  # as `cat` and `ls` of a missing path
        store.pull("ds", tmp_path / "dest", paths=["zzz"])


def test_export_needs_a_dvc_file_name(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    with pytest.raises(InputError, match=r"NAME\.dvc"):
        store.export_dvc("ds", tmp_path / "x.txt")


def test_invalid_settings() -> None:
    with pytest.raises(InputError, match="jobs"):
        Store(jobs=0)


def test_a_file_changed_while_committing_is_refused(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer still appending to the data after it was hashed: no object under a wrong hash, no version."""
    from gitfree.versioning import localfs, staging

    src = write_tree(tmp_path / "src", {"a.csv": b"1,2\n", "b.csv": b"3,4\n"})
    copy = localfs.copy_file

    def racing_copy(source: str, target: str) -> None:
        if source.endswith("b.csv"):
            with open(source, "ab") as f:  # the producer writes one more row after the hashing
                f.write(b"5,6\n")
        copy(source, target)

    monkeypatch.setattr(staging, "copy_file", racing_copy)
    with pytest.raises(InputError, match=r"b\.csv changed while it was being committed"):
        store.commit("ds", src)
    assert store.datasets() == []
    leftovers = [p for p in store.cache_dir.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []
    monkeypatch.setattr(staging, "copy_file", copy)
    version = store.commit("ds", src)  # once the data is stable, it commits, with what is there now
    dest = store.pull(version, tmp_path / "dest")
    assert read_tree(dest) == {"a.csv": b"1,2\n", "b.csv": b"3,4\n5,6\n"}
