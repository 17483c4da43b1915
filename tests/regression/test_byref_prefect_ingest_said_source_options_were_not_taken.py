"""``ingest_dataset(by_reference=True, source_options=...)`` refused with "source options are not taken by
reference yet: a source by reference is read with the store's endpoint and credentials" after the core had
learnt source options of their own (``GITFREE_SOURCE_*``, ``Store(source_options=)``): a user with a source on
another endpoint was told it could not be done. Now ``source_options`` are taken (a field they do not have is
one line naming the fields they have), and an ingest by reference with the worker's ``GITFREE_SOURCE_*`` set
reads the source there. Real Prefect (the test process's
temporary server), real SeaweedFS. Found by the second hostile pass over issue 18."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from gitfree import InputError, Store
from gitfree.flows import ingest_dataset
from gitfree.tasks import GitfreeStore
from gitfree.testing import SeaweedFS


@pytest.fixture(scope="module", autouse=True)
def _prefect_server(prefect_harness: None) -> None:
    """The process's temporary Prefect server (tests/conftest.py's ``prefect_harness``) for this module."""


def test_ingest_by_reference_names_the_source_variables_and_takes_them(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, prefix = seaweedfs.client(), f"ingest-{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/f.txt", Body=b"on an endpoint of its own")
    store = make_store("s3")
    block = GitfreeStore(url=store.url, cache_dir=str(store.cache_dir), **seaweedfs.store_options())
    source = f"s3://{seaweedfs.bucket}/{prefix}/"
    alias = seaweedfs.endpoint.replace("127.0.0.1", "localhost")  # the same server: another endpoint to a table
    with pytest.raises(InputError, match=r"\(key: .*\): they take endpoint_url, access_key_id, secret_access_key"):
        ingest_dataset(source, "landed", store=block, by_reference=True, source_options={"key": "k"})
    assert store.datasets() == []
    monkeypatch.setenv("GITFREE_SOURCE_ENDPOINT_URL", alias)
    monkeypatch.setenv("GITFREE_SOURCE_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("GITFREE_SOURCE_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    version = ingest_dataset(source, "landed", store=block, by_reference=True)
    table, _ = store.catalog.references(version)
    assert table.endpoint == alias
