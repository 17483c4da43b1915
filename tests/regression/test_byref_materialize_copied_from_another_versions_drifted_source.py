"""The same bytes in two versions by reference: ``a`` on an S3 prefix of the store's own server (a file a copy
can take), ``b`` in a folder. After a process had seen both and ``a``'s key was overwritten, ``materialize b``
picked ``a``'s key for a server-side copy (the first copyable place of the md5, not ``b``'s own), the copy's pin
refused it and the whole materialize was an ``IntegrityError`` naming ``a``'s key, though ``b``'s folder held the
bytes and a pull of ``b`` read them. Now a copy refused by its pin falls back to the streamed read, which tries
every place in turn. Found by the second hostile pass over issue 18."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from helpers import write_tree

from gitfree import Store
from gitfree.testing import SeaweedFS

DATA = b"the same bytes in two places\n"


def test_materialize_takes_the_bytes_from_its_own_folder_when_another_sources_copy_is_refused(
    seaweedfs: SeaweedFS, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    client, prefix = seaweedfs.client(), f"two-{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/a.bin", Body=DATA)
    folder = write_tree(tmp_path / "B", {"b.bin": DATA})
    writer = make_store("s3")
    writer.commit("a", f"s3://{seaweedfs.bucket}/{prefix}/", by_reference=True)
    writer.commit("b", folder, by_reference=True)
    worker = make_store("s3")  # a long-lived process that has seen both
    worker.show("a")
    worker.show("b")
    client.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/a.bin", Body=b"other bytes")
    worker.materialize("b")
    md5 = worker.files("b")[0].md5
    assert worker.objects.present({md5}) == {md5}
    assert worker.export_dvc("b", tmp_path / "b.dvc").is_file()
    assert make_store("s3").open("b", "b.bin").read() == DATA
