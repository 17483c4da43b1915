"""Quick fsck on Azure Blob Storage (issue 18): Azure's ETag is not an md5, so the quick fsck reads each
object's Content-MD5 from List Blobs and finds an object corrupted on the server without --deep; a blob
uploaded in blocks has no Content-MD5 and is counted unverified (``--deep`` hashes it). On real Azurite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import obstore
from helpers import write_tree

from gitfree import Store
from gitfree.testing import AZURITE_ACCOUNT, AZURITE_KEY, Azurite
from gitfree.versioning import layout


def _blobs(azurite: Azurite, store: Store):  # type: ignore[no-untyped-def]
    from obstore.store import AzureStore

    container, _, prefix = store.url.removeprefix("az://").partition("/")
    blobs = AzureStore(
        container,
        prefix=prefix,
        account_name=AZURITE_ACCOUNT,
        account_key=AZURITE_KEY,
        endpoint=azurite.endpoint,
        client_options={"allow_http": True},
    )
    return blobs


def test_quick_fsck_on_azure_finds_an_object_corrupted_on_the_server_by_its_content_md5(
    azurite: Azurite, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    store = make_store("az")
    files = {"a.csv": b"x,y\n1,2\n", "b.txt": b"hello", "c.bin": b"\0" * 5000}
    version = store.commit("ds", write_tree(tmp_path / "src", files))
    clean = store.fsck()
    assert clean.ok and clean.unverified == 0, clean  # every object checked by its Content-MD5, none read
    assert clean.bytes_hashed == 0

    blobs = _blobs(azurite, store)
    bad = layout.object_key(next(f.md5 for f in store.files(version) if f.path == "a.csv"))
    obstore.put(blobs, bad, b"x,y\n1,3\n", use_multipart=False)  # same size, other bytes, on the server
    found = store.fsck()
    assert not found.ok
    assert [(p.kind, p.key) for p in found.problems] == [("hash_mismatch", bad)]

    # a blob written in blocks has no Content-MD5: unverified without --deep, found by --deep
    odd = layout.object_key(next(f.md5 for f in store.files(version) if f.path == "b.txt"))
    obstore.put(blobs, odd, b"jello", use_multipart=True)
    quick = store.fsck()
    assert quick.unverified == 1 and [(p.kind, p.key) for p in quick.problems] == [("hash_mismatch", bad)]
    deep = store.fsck(deep=True)
    assert sorted((p.kind, p.key) for p in deep.problems) == sorted([("hash_mismatch", bad), ("hash_mismatch", odd)])
