"""Commits and pulls on each emulator against that emulator's own floor: SeaweedFS (S3), Azurite (Azure Blob) and
fake-gcs-server (GCS), each on 127.0.0.1.

    python -m bench.emulators [--files 200] [--size 65536] [--big-mib 64] [--reps 3] [--kinds s3,az,gs]

Three data sets: ``--files`` files of ``--size`` bytes, one file of ``--big-mib`` MiB, and one file of one byte
(what a commit and a pull cost whatever the data: their records, lease and listing requests). For each server
and data set, each repetition times a cold ``Store.commit`` (a new store prefix, an empty worker cache) and a
cold ``Store.pull`` (another empty worker cache, a new destination) against the floor: the same bytes read from
disk and PUT with obstore, then GET with obstore and written to disk, ``jobs`` requests in flight (gitfree's
default, 64), the store's own obstore client (``backend.object_store()``). On fake-gcs-server obstore's PUT is
refused (the emulator takes no XML-API upload), so there the PUT floor is the JSON-API upload gitfree itself
uses (``backend.object_uploader()``, 32 threads). Prints medians and the ratio to the floor.

``--count``: instead, the requests of one commit and one pull of each data set, through a counting proxy, on
SeaweedFS and Azurite (fake-gcs-server takes a request for its XML API, obstore's reads, only under the host name
it was started with, which the proxy's address is not).

See docs/benchmarks.md, "Azure Blob and GCS against their emulators' floor".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import obstore

from gitfree import Store
from gitfree.testing import Azurite, CountingProxy, FakeGCS, SeaweedFS
from gitfree.versioning.transfer import each

JOBS = 64


@contextlib.contextmanager
def _server(kind: str, count: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(url of the bucket or container, Store options)`` of a running server of ``kind``; with ``count``, the
    options reach it through a :class:`CountingProxy` (yielded as ``options["proxy"]``)."""
    server: SeaweedFS | Azurite | FakeGCS
    if kind == "s3":
        server, base = SeaweedFS(bucket="bench"), "s3://bench"
    elif kind == "az":
        server, base = Azurite(container="bench"), "az://bench"
    else:
        server, base = FakeGCS(bucket="bench"), "gs://bench"
    with server:
        options = server.store_options()
        if not count:
            yield base, options
            return
        port = server.s3_port if isinstance(server, SeaweedFS) else server.port
        with CountingProxy(port) as proxy:
            account = "/devstoreaccount1" if kind == "az" else ""
            yield base, {**options, "endpoint_url": proxy.endpoint + account, "proxy": proxy}


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _floor_put(store: Store, files: list[Path], root: Path) -> None:
    keys = {f"floor/{path.relative_to(root).as_posix()}": path for path in files}
    uploader = store.backend.object_uploader()
    if uploader is not None:  # fake-gcs-server: the JSON API, as gitfree uploads there
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda item: uploader(*item), keys.items()))
        return
    objects = store.backend.object_store()

    async def one(key: str) -> None:
        await obstore.put_async(objects, key, keys[key].read_bytes())

    asyncio.run(each(sorted(keys), JOBS, one))


def _floor_get(store: Store, files: list[Path], root: Path, dest: Path) -> None:
    objects = store.backend.object_store()
    keys = [f"floor/{path.relative_to(root).as_posix()}" for path in files]

    async def one(key: str) -> None:
        result = await obstore.get_async(objects, key)
        target = dest / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            async for chunk in result.stream(min_chunk_size=8 << 20):
                f.write(chunk)

    asyncio.run(each(keys, JOBS, one))


def _rep(base: str, options: dict[str, Any], src: Path, work: Path) -> dict[str, float]:
    run = uuid.uuid4().hex[:12]
    url = f"{base}/{run}"
    files = sorted(p for p in src.rglob("*") if p.is_file())
    floor = Store(f"{base}/floor-{run}", cache_dir=work / "floor", **options)  # its backend's clients only
    writer = Store(url, cache_dir=work / "writer", **options)
    writer.datasets()  # the store's first request (and the probe at its first write) outside the timings
    writer.backend.probe_conditional_writes()
    times = {
        "floor_put": _timed(lambda: _floor_put(floor, files, src)),
        "commit": _timed(lambda: writer.commit("ds", src)),
    }
    reader = Store(url, cache_dir=work / "reader", **options)
    reader.datasets()
    times["floor_get"] = _timed(lambda: _floor_get(floor, files, src, work / "floor-out"))
    times["pull"] = _timed(lambda: reader.pull("ds", work / "out"))
    return times


def _requests(base: str, options: dict[str, Any], src: Path, work: Path) -> str:
    """The requests of one cold commit and one cold pull of ``src``, by method."""
    proxy: CountingProxy = options.pop("proxy")
    url = f"{base}/{uuid.uuid4().hex[:12]}"
    writer = Store(url, cache_dir=work / "writer", **options)
    writer.datasets()
    writer.backend.probe_conditional_writes()
    proxy.take()
    writer.commit("ds", src)
    commit = proxy.take()
    reader = Store(url, cache_dir=work / "reader", **options)
    reader.pull("ds", work / "out")
    pull = proxy.take()
    options["proxy"] = proxy
    return f"commit {commit.total} {dict(commit.requests)}, pull {pull.total} {dict(pull.requests)}"


def _dataset(root: Path, files: int, size: int) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"d{i % 8}" / f"f{i:05d}.bin").parent.mkdir(exist_ok=True)
        (root / f"d{i % 8}" / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=64 << 10)
    parser.add_argument("--big-mib", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--kinds", default="s3,az,gs")
    parser.add_argument("--count", action="store_true", help="count the requests of one commit and pull instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sets = {
            f"{args.files} x {args.size >> 10} KiB": _dataset(root / "many", args.files, args.size),
            f"1 x {args.big_mib} MiB": _dataset(root / "big", 1, args.big_mib << 20),
            "1 x 1 B (the fixed cost)": _dataset(root / "tiny", 1, 1),
        }
        if args.count:
            for kind in args.kinds.split(","):
                if kind == "gs":  # obstore's GETs would reach its JSON API, as 404s
                    print("gs: not counted: fake-gcs-server serves the XML API only under its -public-host name")
                    continue
                with _server(kind, count=True) as (base, options):
                    for name, src in sets.items():
                        print(f"{kind}, {name}: {_requests(base, options, src, root / f'count-{kind}-{len(name)}')}")
            return
        print("| store | data | commit | floor PUT | commit / floor | pull | floor GET | pull / floor |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind in args.kinds.split(","):
            with _server(kind) as (base, options):
                for name, src in sets.items():
                    runs = []
                    for rep in range(args.reps):
                        work = root / f"work-{kind}-{rep}"
                        runs.append(_rep(base, options, src, work))
                        shutil.rmtree(work)
                    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                    print(
                        f"| {kind} | {name} | {m['commit']:.2f} s | {m['floor_put']:.2f} s | "
                        f"{m['commit'] / m['floor_put']:.2f} x | {m['pull']:.2f} s | {m['floor_get']:.2f} s | "
                        f"{m['pull'] / m['floor_get']:.2f} x |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
