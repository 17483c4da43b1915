"""A version by reference whose source is on an endpoint of its own, read (``open``, ``peek``, ``pull``, ``fsck``)
by a worker whose source options for that endpoint hold wrong keys: the error said to check
``GITFREE_ACCESS_KEY_ID / GITFREE_SECRET_ACCESS_KEY`` (the store's, which were right), and with no source keys
at all "set GITFREE_ACCESS_KEY_ID and GITFREE_SECRET_ACCESS_KEY". A commit's listing already named
``GITFREE_SOURCE_*``; now every read and look at such a source does. Found by the second hostile pass over issue
18."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gitfree import ConfigError, SourceOptions, Store
from gitfree.testing import SeaweedFS

STORES_OWN = re.compile(r"(?<!SOURCE_)\bGITFREE_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)\b")


def test_a_read_with_wrong_source_keys_names_the_source_settings(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    client, prefix = seaweedfs.client(), f"named-{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/f.txt", Body=b"on an endpoint of its own")
    alias = seaweedfs.endpoint.replace("127.0.0.1", "localhost")  # the same server: another endpoint to a table
    keys: dict[str, Any] = {"access_key_id": seaweedfs.access_key, "secret_access_key": seaweedfs.secret_key}
    right = SourceOptions(endpoint_url=alias, **keys)
    make_store("s3").commit("o", f"s3://{seaweedfs.bucket}/{prefix}/", by_reference=True, source_options=right)
    for options in (
        SourceOptions(endpoint_url=alias, access_key_id="wrong", secret_access_key="wrong"),
        SourceOptions(endpoint_url=alias),
    ):
        reader = make_store("s3", source_options=options)
        for read in (
            partial(reader.open, "o", "f.txt"),
            partial(reader.peek, "o", "f.txt"),
            partial(reader.pull, "o", tmp_path / "out"),
        ):
            with pytest.raises(ConfigError) as caught:
                read()
            assert "GITFREE_SOURCE_ACCESS_KEY_ID" in str(caught.value), caught.value
            assert not STORES_OWN.search(str(caught.value)), caught.value
        [line] = reader.fsck().problems
        assert line.kind == "source_unreadable" and "GITFREE_SOURCE_ACCESS_KEY_ID" in line.detail, line
        assert not STORES_OWN.search(line.detail), line


def test_source_options_for_another_endpoint_are_named_as_such(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store]
) -> None:
    """Options for the wrong endpoint: "no source options are set for it" said nothing of the ones that are."""
    client, prefix = seaweedfs.client(), f"named-{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/f.txt", Body=b"on an endpoint of its own")
    alias = seaweedfs.endpoint.replace("127.0.0.1", "localhost")
    keys: dict[str, Any] = {"access_key_id": seaweedfs.access_key, "secret_access_key": seaweedfs.secret_key}
    make_store("s3").commit(
        "o",
        f"s3://{seaweedfs.bucket}/{prefix}/",
        by_reference=True,
        source_options=SourceOptions(endpoint_url=alias, **keys),
    )
    reader = make_store("s3", source_options=SourceOptions(endpoint_url="http://minio.lab:9000", **keys))
    said = r"no source options are set for it \(this worker's are for http://minio\.lab:9000\): "
    with pytest.raises(ConfigError, match=rf"{said}set GITFREE_SOURCE_ENDPOINT_URL={alias} "):
        reader.open("o", "f.txt")
