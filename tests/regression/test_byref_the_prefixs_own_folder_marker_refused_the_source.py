"""A source prefix holding its own folder marker (the zero-byte ``data/`` a console's "Create folder" makes) could
not be committed by reference: cut below the prefix, the marker is the empty name, and the commit said the source
"holds a name a version cannot hold (lists an empty or non-text path (''))". Markers below the prefix were
already skipped; now the prefix's own is too. Found by the hostile pass over versions by reference (issue 18), on
a real SeaweedFS bucket."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gitfree import InputError, Store
from gitfree.testing import SeaweedFS


def test_a_prefix_with_its_own_folder_marker_is_committed_and_a_marker_alone_holds_nothing(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    client = seaweedfs.client()
    bucket = f"mark-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    for key, body in [("data/", b""), ("data/x.txt", b"x"), ("data/sub/", b""), ("empty/", b"")]:
        client.put_object(Bucket=bucket, Key=key, Body=body)
    store = make_store("s3")
    version = store.commit("ds", f"s3://{bucket}/data/", by_reference=True)
    assert [e.path for e in store.files(version)] == ["x.txt"]
    assert make_store("s3").open("ds", "x.txt").read() == b"x"
    with pytest.raises(InputError, match=rf"^s3://{bucket}/empty/ holds no objects; check the prefix$"):
        store.commit("other", f"s3://{bucket}/empty/", by_reference=True)
