"""``materialize`` of a version by reference streams what it cannot copy on the server through the worker cache,
and took a copy already in the cache as it was: a cached copy changed since it was read (the same size, other
bytes) was uploaded into ``files/md5/X``, so ``fsck --deep`` found a hash mismatch, and once the source was gone
the version could never be read again (R6: ``files/md5/X`` holds only X's bytes). Now a cached copy the hash
state does not vouch for is hashed first, and one that does not match is read again from the source; with the
source gone too, it is the drift error and nothing is uploaded. Found by the second hostile pass over issue 18."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import IntegrityError, Store
from gitfree.versioning import layout

DATA = b"precious bytes"


def _corrupt(store: Store, md5: str) -> None:
    cached = store.objects.cached(md5)
    assert cached.is_file()
    os.chmod(cached, 0o644)
    cached.write_bytes(b"X" * cached.stat().st_size)  # the same size, other bytes


def test_materialize_never_uploads_a_cached_copy_that_is_not_its_md5(
    kind: str, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"x.txt": DATA, "y.txt": b"beside it"})
    worker = make_store(kind)
    version = worker.commit("ds", src, by_reference=True)
    md5 = next(e.md5 for e in worker.files(version) if e.path == "x.txt")
    assert worker.open("ds", "x.txt").read() == DATA  # now in the worker cache
    _corrupt(worker, md5)
    worker.materialize("ds")
    assert worker.fsck(deep=True).problems == []
    for name in ("x.txt", "y.txt"):
        (src / name).unlink()
    assert make_store(kind).open("ds", "x.txt").read() == DATA

    other = write_tree(tmp_path / "other", {"z.txt": b"another precious file"})
    version = worker.commit("two", other, by_reference=True)
    [entry] = worker.files(version)
    assert worker.open("two", "z.txt").read() == b"another precious file"
    _corrupt(worker, entry.md5)
    (other / "z.txt").unlink()
    with pytest.raises(IntegrityError, match=r"z\.txt changed since it was committed by reference"):
        worker.materialize("two")
    assert not worker.backend.exists(layout.object_key(entry.md5))
