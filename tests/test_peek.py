"""Ranged reads: ``Backend.get_range`` on both backends and ``Store.peek``, what previews read a file through.

A peek reads ``data[offset:][:length]`` of one file of a version, from the worker cache when its hash state
vouches for its copy, else with one ranged GET: never the whole file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree

from gitfree import FileEntry, InputError, IntegrityError, NotFoundError, Store
from gitfree.testing import CountingProxy, SeaweedFS
from gitfree.versioning import layout
from gitfree.versioning.backends import KeyMissing
from gitfree.versioning.errors import GitfreeError
from gitfree.versioning.store import PEEK_MAX

DATA = random.Random(7).randbytes(1000)
CASES = [
    (0, 10),
    (0, 1000),
    (990, 100),  # runs past the end: cut there
    (999, 1),
    (1000, 10),  # at the end
    (5000, 10),  # past it
    (1 << 62, 10),  # far past it: S3 answers 416
    (-(1 << 62), 4),
    (-8, 8),  # the last 8 bytes (Parquet's footer length and magic)
    (-10, 100),
    (-1000, 3),
    (-2000, 5),  # a negative offset longer than the file starts at its first byte
    (-1, 0),
    (0, 0),
    (0, PEEK_MAX),  # a huge length is cut at the end, and allocates nothing of its size
]


def _commit(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a/data.bin": DATA, "a/empty.txt": b"", "b.txt": b"bee"})
    store.commit("ds", src)
    store.commit("one", write_tree(tmp_path / "single", {"data.bin": DATA}) / "data.bin")


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_peek_reads_what_a_slice_would(kind: str, make_store: Callable[..., Store], tmp_path: Path) -> None:
    writer = make_store(kind)
    _commit(writer, tmp_path)
    reader = make_store(kind)  # another worker cache: every read goes to the store
    for store in (writer, reader):
        ds, one = store.show("ds"), store.show("one")  # a Version is taken as it is: no request for the record
        for offset, length in CASES:
            assert store.peek(ds, "a/data.bin", offset, length) == DATA[offset:][:length], (offset, length)
            assert store.peek(one, "", offset, length) == DATA[offset:][:length], (offset, length)
        assert store.peek("ds", "a/empty.txt") == b""  # S3 answers 416 to any range of an empty object
        assert store.peek("ds", "a/empty.txt", -5, 5) == b""
        assert store.peek("ds", "/b.txt") == b"bee"  # paths as open() takes them
        assert store.peek("one", "data.bin", 0, 4) == DATA[:4]
    entry = next(e for e in reader.files("ds") if e.path == "a/data.bin")
    assert reader.peek("ds", entry, -3, 3) == DATA[-3:]  # an entry as files() lists it (no size: a HEAD)


def test_peek_refuses_folders_missing_files_and_bad_arguments(store: Store, tmp_path: Path) -> None:
    _commit(store, tmp_path)
    with pytest.raises(NotFoundError, match=r"ds@1 has no file 'a/data\.bni' \(did you mean 'a/data\.bin'\?\)"):
        store.peek("ds", "a/data.bni")
    with pytest.raises(NotFoundError, match=r"no file 'nope'; list its files with `gitfree ls ds@1`"):
        store.peek("ds", "nope")
    with pytest.raises(NotFoundError, match=r"'ds' has no version 9"):
        store.peek("ds@9", "b.txt")
    with pytest.raises(InputError, match=r"a is a folder of ds@1: open one of its files \(data\.bin, empty\.txt\)"):
        store.peek("ds", "a")
    with pytest.raises(InputError, match="a folder"):
        store.peek("ds", "")
    for offset, length in [(0, -1), (0, PEEK_MAX + 1), ("0", 10), (0, 1.5), (True, 1)]:
        with pytest.raises(InputError, match=r"(offset|length) is"):
            store.peek("ds", "b.txt", offset, length)  # type: ignore[arg-type]
    forged = FileEntry(path="x", md5="../../../../etc/passwd")  # would read outside the worker cache
    with pytest.raises(InputError, match="names no object"):
        store.peek("ds", forged)
    md5 = next(e.md5 for e in store.files("ds") if e.path == "b.txt")
    store.backend.delete(layout.object_key(md5))
    (store.cache_dir / layout.object_key(md5)).unlink()
    with pytest.raises(IntegrityError, match=r"b\.txt in ds@1 is missing from .*; run `gitfree fsck`"):
        store.peek("ds", "b.txt")
    with pytest.raises(IntegrityError, match="is missing"):
        store.peek("ds", "b.txt", -2, 2)  # the size is not known either


def test_get_range_on_both_backends(store: Store, tmp_path: Path) -> None:
    _commit(store, tmp_path)
    key = layout.object_key(next(e.md5 for e in store.files("ds") if e.path == "a/data.bin"))
    backend = store.backend
    assert backend.get_range(key, 0, 10) == DATA[:10]
    assert backend.get_range(key, 995, 1 << 62) == DATA[995:]
    assert backend.get_range(key, 1000, 1001) == b""
    assert backend.get_range(key, 7, 7) == b""
    assert backend.get_range(key, 7, 3) == b""
    with pytest.raises(KeyMissing):
        backend.get_range(layout.object_key("0" * 32), 0, 10)
    with pytest.raises(ValueError, match="0 or more"):
        backend.get_range(key, -1, 10)


def test_an_empty_range_sends_no_request(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    """``bytes=7-6`` is no range: a server answers it with the whole object, so it is never sent."""
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "w", **options).commit("ds", write_tree(tmp_path / "src", {"x": DATA}))
    with CountingProxy(seaweedfs.s3_port) as proxy:
        reader = Store(s3_url, cache_dir=tmp_path / "r", **{**options, "endpoint_url": proxy.endpoint})
        version = reader.show("ds")
        key = layout.object_key(reader.files(version)[0].md5)
        proxy.take()
        assert reader.backend.get_range(key, 7, 7) == b""
        assert reader.backend.get_range(key, 7, 3) == b""
        assert reader.peek(version, "x", 0, 0) == b""
        assert proxy.take().total == 0


def test_a_peek_of_a_50_mb_file_is_one_ranged_get(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    big = random.Random(1).randbytes(50 << 20)
    options = seaweedfs.store_options()
    src = write_tree(tmp_path / "src", {"big.bin": big, "small.txt": b"s"})
    Store(s3_url, cache_dir=tmp_path / "writer", **options).commit("ds", src)
    with CountingProxy(seaweedfs.s3_port) as proxy:
        reader = Store(s3_url, cache_dir=tmp_path / "reader", **{**options, "endpoint_url": proxy.endpoint})
        version = reader.show("ds")
        entry = next(e for e in reader.files(version) if e.path == "big.bin")  # the listing, kept in the cache
        proxy.take()
        assert reader.peek(version, "big.bin") == big[: 64 << 10]
        first = proxy.take()
        assert reader.peek(version, "big.bin", -100, 8) == big[-100:][:8]  # the size first: one HEAD
        tail = proxy.take()
        sized = entry.model_copy(update={"size": len(big)})
        assert reader.peek(version, sized, (20 << 20) + 3, 1000) == big[(20 << 20) + 3 :][:1000]
        middle = proxy.take()
    assert dict(first.requests) == {"GET": 1}, first
    assert 64 << 10 < first.bytes_down < (64 << 10) + 4096, first  # 64 KiB and the response's head
    assert dict(tail.requests) == {"HEAD": 1, "GET": 1}, tail
    assert tail.bytes_down < 4096, tail
    assert dict(middle.requests) == {"GET": 1} and middle.bytes_down < 5000, middle


def test_the_worker_cache_is_read_only_when_its_copy_is_vouched_for(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path
) -> None:
    options = seaweedfs.store_options()
    with CountingProxy(seaweedfs.s3_port) as proxy:
        store = Store(s3_url, cache_dir=tmp_path / "c", **{**options, "endpoint_url": proxy.endpoint})
        store.commit("ds", write_tree(tmp_path / "src", {"x.bin": DATA, "y": b"y"}))
        version = store.show("ds")
        md5 = next(e.md5 for e in store.files(version) if e.path == "x.bin")
        proxy.take()
        assert store.peek(version, "x.bin", 10, 20) == DATA[10:30]
        assert proxy.take().requests["GET"] == 0  # hashed into the cache by the commit: read there
        cached = store.cache_dir / layout.object_key(md5)
        cached.chmod(0o644)
        cached.write_bytes(b"R" * len(DATA))  # damaged in place: the hash state no longer vouches for it
        assert store.peek(version, "x.bin", 10, 20) == DATA[10:30]
        assert proxy.take().requests["GET"] == 1


def test_a_server_that_ignores_the_range_is_refused(s3_store: Store, tmp_path: Path) -> None:
    """A server that answers a ranged GET with the whole object (200) is told apart from one that serves the
    range (206): from offset 0 only the bytes asked for are read; from elsewhere the bytes would be wrong."""
    s3_store.commit("ds", write_tree(tmp_path / "src", {"x.bin": DATA, "y": b"y"}))
    reader = Store(s3_store.url, cache_dir=tmp_path / "reader", settings=s3_store.settings)

    def drop_range(request: Any, **_: Any) -> None:  # the fault: as a server (or proxy) ignoring Range
        if "Range" in request.headers:
            del request.headers["Range"]

    client = reader.backend._client  # type: ignore[attr-defined]
    client.meta.events.register("before-sign.s3.GetObject", drop_range)
    assert reader.peek("ds", "x.bin", 0, 10) == DATA[:10]
    with pytest.raises(GitfreeError, match=r"ignored the Range of a read of .*: use an S3 server that serves byte"):
        reader.peek("ds", "x.bin", 10, 10)
