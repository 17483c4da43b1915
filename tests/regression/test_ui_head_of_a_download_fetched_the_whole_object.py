"""``HEAD`` of a file's download (``/v/DS@N/-/raw/PATH``) fetched the whole object into the server's worker
cache to tell its size: a crawler sending HEADs over a version of large files filled the server's disk. It now
answers from the listing's entry and the size (the worker cache, else one HEAD request to the store)."""

from __future__ import annotations

from pathlib import Path

import httpx
from helpers import write_tree
from ui.ui_helpers import serve

from gitfree import Store
from gitfree.ui import create_app


def _objects(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and len(p.parent.name) == 2]


def test_head_of_a_download_does_not_fetch_the_object(tmp_path: Path) -> None:
    data = b"x" * 3_000_000
    Store(tmp_path / "store", cache_dir=tmp_path / "writer").commit("big", write_tree(tmp_path / "s", {"a.bin": data}))
    cache = tmp_path / "server-cache"
    with serve(create_app(Store(tmp_path / "store", cache_dir=cache))) as site:
        head = httpx.head(f"{site.url}/v/big@1/-/raw/a.bin", timeout=30)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data)), head.headers
        assert sum(p.stat().st_size for p in _objects(cache)) < len(data), "HEAD fetched the object"
        got = httpx.get(f"{site.url}/v/big@1/-/raw/a.bin", timeout=30)
        assert got.content == data and got.headers["content-length"] == str(len(data))
        assert sum(p.stat().st_size for p in _objects(cache)) >= len(data)  # the GET did fetch it (the check sees it)


def test_head_of_a_missing_object_is_the_error_the_download_gives(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "writer")
    version = store.commit("big", write_tree(tmp_path / "s", {"a.bin": b"gone"}))
    [entry] = store.files(version)
    (tmp_path / "store" / "files" / "md5" / entry.md5[:2] / entry.md5[2:]).unlink()
    with serve(create_app(Store(tmp_path / "store", cache_dir=tmp_path / "server-cache"))) as site:
        head = httpx.head(f"{site.url}/v/big@1/-/raw/a.bin", timeout=30)
        get = httpx.get(f"{site.url}/v/big@1/-/raw/a.bin", timeout=30)
    assert head.status_code == get.status_code >= 400, (head.status_code, get.status_code)
