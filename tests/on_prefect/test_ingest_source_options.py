"""``ingest_dataset(..., by_reference=True)`` with source options (issue 18): an ``s3://`` source on a second
SeaweedFS server, with identities of its own that the store's credentials are not, is read with the options
given as a flow parameter, the block's ``source_*`` fields (saved on the Prefect server, secrets as
``SecretStr``) or ``GITFREE_SOURCE_*``; bad options are one line. A real Prefect server, two real SeaweedFS."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from helpers import read_tree
from pydantic import SecretStr
from test_materialize_copy import READER, OtherSeaweedFS

from gitfree import Store
from gitfree.flows import ingest_dataset
from gitfree.tasks import GitfreeStore
from gitfree.testing import SeaweedFS
from gitfree.versioning import ConfigError, InputError, SourceOptions

FILES = {"day=1/a.json": b'{"a": 1}', "readme.txt": b"raw drop"}


@pytest.fixture(scope="module")
def other() -> Iterator[OtherSeaweedFS]:
    server = OtherSeaweedFS(bucket="ingest-source", access_key="other-admin")
    with server:
        yield server


@pytest.fixture
def source(other: OtherSeaweedFS) -> str:
    client, prefix = other.client(), f"drop-{uuid.uuid4().hex[:8]}"
    for path, data in FILES.items():
        client.put_object(Bucket=other.bucket, Key=f"{prefix}/{path}", Body=data)
    return f"s3://{other.bucket}/{prefix}/"


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


def _block(store: Store, seaweedfs: SeaweedFS, **fields: object) -> GitfreeStore:
    return GitfreeStore(url=store.url, cache_dir=str(store.cache_dir), **seaweedfs.store_options(), **fields)


def _reads(store: Store, other: OtherSeaweedFS, ref: str, dest: Path) -> dict[str, bytes]:
    reader = Store(
        store.url,
        settings=store.settings,
        source_options=SourceOptions(endpoint_url=other.endpoint, access_key_id=READER[0], secret_access_key=READER[1]),
    )
    return read_tree(reader.pull(ref, dest))


def test_ingest_by_reference_takes_source_options_as_a_parameter(
    store: Store, seaweedfs: SeaweedFS, other: OtherSeaweedFS, source: str, dataset: str, tmp_path: Path
) -> None:
    block = _block(store, seaweedfs)
    with pytest.raises(ConfigError, match="cannot list the source"):  # the store's credentials do not reach it
        ingest_dataset(source, dataset, store=block, by_reference=True)
    options = {"endpoint_url": other.endpoint, "access_key_id": READER[0], "secret_access_key": READER[1]}
    version = ingest_dataset(source, dataset, store=block, by_reference=True, source_options=options)
    assert (version.number, version.nfiles, version.reference is not None) == (1, 2, True)
    assert not [oid for oid in store.objects.scan() if not oid.endswith(".dir")]  # nothing uploaded
    assert _reads(store, other, version.ref, tmp_path / "out") == FILES
    typed = SourceOptions(**options)  # type: ignore[arg-type]
    again = ingest_dataset(source, dataset, store=block, by_reference=True, source_options=typed)
    assert (again.number, again.created) == (1, False)


def test_ingest_by_reference_reads_the_blocks_source_fields_or_the_environment(
    store: Store,
    seaweedfs: SeaweedFS,
    other: OtherSeaweedFS,
    source: str,
    dataset: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"src-{uuid.uuid4().hex[:8]}"
    _block(
        store,
        seaweedfs,
        source_endpoint_url=other.endpoint,
        source_access_key_id=READER[0],
        source_secret_access_key=READER[1],
    ).save(name)
    loaded = cast(GitfreeStore, GitfreeStore.load(name))
    assert isinstance(loaded.source_secret_access_key, SecretStr)
    assert READER[1] not in repr(loaded) and READER[1] not in str(loaded.model_dump())
    version = ingest_dataset(source, dataset, store=loaded, by_reference=True)
    assert version.nfiles == 2
    assert read_tree(loaded.get_store().pull(version.ref, tmp_path / "out")) == FILES  # reads use them too

    monkeypatch.setenv("GITFREE_SOURCE_ENDPOINT_URL", other.endpoint)
    monkeypatch.setenv("GITFREE_SOURCE_ACCESS_KEY_ID", READER[0])
    monkeypatch.setenv("GITFREE_SOURCE_SECRET_ACCESS_KEY", READER[1])
    from_env = ingest_dataset(source, f"{dataset}-env", store=_block(store, seaweedfs), by_reference=True)
    assert from_env.nfiles == 2


def test_bad_source_options_of_an_ingestion_by_reference_are_one_line_without_the_secret(
    store: Store, seaweedfs: SeaweedFS, source: str, dataset: str
) -> None:
    block = _block(store, seaweedfs)
    with pytest.raises(InputError) as caught:
        ingest_dataset(source, dataset, store=block, by_reference=True, source_options={"key": "s3cr3t-value"})
    message = str(caught.value)
    assert message.startswith("invalid source_options for an ingestion by reference (key: ")
    assert message.endswith("they take endpoint_url, access_key_id, secret_access_key, session_token, region, profile")
    assert "s3cr3t-value" not in message and "\n" not in message
    with pytest.raises(InputError, match="are for an ingestion by reference"):
        ingest_dataset(source, dataset, store=block, source_options=SourceOptions(access_key_id="x"))
