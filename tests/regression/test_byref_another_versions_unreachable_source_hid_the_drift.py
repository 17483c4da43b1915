"""The same bytes in two versions by reference: ``a`` on an S3 endpoint this worker has no source options for
(its reads say what to set), ``b`` in a folder. Once a process had seen both and ``b``'s file was removed, a read
of ``b`` (``open``, ``peek``, ``pull``) tried ``b``'s folder, then ``a``'s place, and that place's ``ConfigError``
("no source options are set for it", exit code 6) was the answer: it named another version's endpoint and
hid ``b``'s own drift. Now a place that cannot be reached is one more place that did not give the bytes, and
the error is the read's own version's (the place tried first). Found by the second hostile pass over issue 18."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import IntegrityError, SourceOptions, Store
from gitfree.testing import SeaweedFS

DATA = b"the same bytes, two sources\n"


def test_a_read_of_a_drifted_version_names_its_own_file_not_another_versions_endpoint(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    client, prefix = seaweedfs.client(), f"unreach-{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/a.bin", Body=DATA)
    folder = write_tree(tmp_path / "B", {"b.bin": DATA})
    there = SourceOptions(  # the same server by another name: another endpoint as far as a table says
        endpoint_url=seaweedfs.endpoint.replace("127.0.0.1", "localhost"),
        access_key_id=seaweedfs.access_key,
        secret_access_key=seaweedfs.secret_key,
    )
    writer = make_store("s3")
    writer.commit("a", f"s3://{seaweedfs.bucket}/{prefix}/", by_reference=True, source_options=there)
    writer.commit("b", folder, by_reference=True)
    reader = make_store("s3")  # no source options: a's reads are a ConfigError
    reader.show("a")
    reader.show("b")
    (folder / "b.bin").unlink()
    for read in (
        lambda: reader.open("b", "b.bin"),
        lambda: reader.peek("b", "b.bin"),
        lambda: reader.pull("b", tmp_path / "out"),
    ):
        with pytest.raises(IntegrityError, match=r"B/b\.bin changed since it was committed by reference"):
            read()
    assert not (tmp_path / "out").exists()
