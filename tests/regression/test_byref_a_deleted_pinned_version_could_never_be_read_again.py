"""A version by reference pinned to a VersionId that was deleted could never be read again, though its key held
the very bytes: the error said to commit the source again, and that commit answered "unchanged" (the same size
and ETag keep the entry whole, VersionId included), so no version of that dataset could read the file. Now a read
whose VersionId is gone takes the key as it is with ``If-Match`` on the entry's ETag, hash-checked as every read
is; other bytes are still an ``IntegrityError`` naming the key (R1). Found by the hostile pass over versions by
reference (issue 18), on a real SeaweedFS bucket with versioning on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gitfree import IntegrityError, Store
from gitfree.testing import SeaweedFS


def _versioned_bucket(seaweedfs: SeaweedFS) -> tuple[object, str]:
    client = seaweedfs.client()
    bucket = f"pin-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return client, bucket


def _delete_old_versions(client: object, bucket: str, key: str) -> None:
    versions = client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]  # type: ignore[attr-defined]
    for v in versions:
        if v["Key"] == key and not v["IsLatest"]:
            client.delete_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])  # type: ignore[attr-defined]


def test_the_same_bytes_under_a_new_version_id_are_read_and_other_bytes_refused(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    client, bucket = _versioned_bucket(seaweedfs)
    put = client.put_object  # type: ignore[attr-defined]
    put(Bucket=bucket, Key="data/a.txt", Body=b"the bytes of a")
    put(Bucket=bucket, Key="data/b.txt", Body=b"the bytes of b")
    url = f"s3://{bucket}/data/"
    store = make_store("s3")
    store.commit("ds", url, by_reference=True)
    put(Bucket=bucket, Key="data/a.txt", Body=b"the bytes of a")  # rewritten with the same bytes ...
    _delete_old_versions(client, bucket, "data/a.txt")  # ... and the pinned version deleted
    assert not store.commit("ds", url, by_reference=True).created  # the source did not change
    reader = make_store("s3")
    assert reader.open("ds", "a.txt").read() == b"the bytes of a"
    assert reader.peek("ds", "a.txt", 4, 5) == b"bytes"
    put(Bucket=bucket, Key="data/b.txt", Body=b"other bytes of b")  # other bytes: refused, as before
    _delete_old_versions(client, bucket, "data/b.txt")
    with pytest.raises(IntegrityError, match=rf"{url}b\.txt changed .*no longer exists, and the key's ETag is"):
        make_store("s3").open("ds", "b.txt")
    with pytest.raises(IntegrityError, match=rf"{url}b\.txt changed"):
        make_store("s3").peek("ds", "b.txt", 0, 3)
