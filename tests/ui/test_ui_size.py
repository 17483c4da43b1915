"""The web view at size (``make slow``): the history of a dataset with 1,000 versions, the datasets page of a
store with 1,000+ datasets and the first page of a version with 100,000 files each answer in at most a second
(median of 5 after one warm-up), and the server's RSS stays flat across 20 pages of the big version.

The store is committed once to ``file://`` (fast), then its keys are copied into SeaweedFS (all but the file
objects a page never reads), and both are timed: what is measured is the server, not the building."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ui.ui_helpers import Served, serve

from gitfree import Store
from gitfree.testing import SeaweedFS
from gitfree.ui import create_app

pytestmark = pytest.mark.slow

VERSIONS, DATASETS, FOLDERS, PER_FOLDER = 1000, 1000, 100, 1000
BOUND = 1.0


def _build(work: Path) -> Store:
    store = Store(str(work / "store"), cache_dir=work / "cache-writer")
    src = work / "one"
    src.mkdir()
    for n in range(VERSIONS):
        (src / "n.txt").write_text(str(n))
        store.commit("many/hist", src, message=f"v{n}", metrics={"n": n})
    for n in range(DATASETS):
        store.commit(f"ds/{n:04d}", src, message=f"d{n}")
    for d in range(FOLDERS):
        folder = work / "big" / f"d{d:03d}"
        folder.mkdir(parents=True)
        for f in range(PER_FOLDER):
            (folder / f"f{f:04d}.txt").write_text(f"{d}-{f}")
    store.commit("big", work / "big", message=f"{FOLDERS * PER_FOLDER} files")
    return store


def _copy(store: Store, seaweedfs: SeaweedFS, prefix: str) -> None:
    root = Path(store.url.removeprefix("file://"))
    keys = [i.key for i in store.backend.scan("") if not (i.key.startswith("files/") and not i.key.endswith(".dir"))]
    client = seaweedfs.client()

    def put(key: str) -> None:
        client.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/{key}", Body=(root / key).read_bytes())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))


@pytest.fixture(scope="module")
def stores(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Store]:
    work = tmp_path_factory.mktemp("ui-size")
    built = _build(work)
    _copy(built, seaweedfs, "ui-size")
    s3 = Store(f"s3://{seaweedfs.bucket}/ui-size", cache_dir=work / "cache-s3", **seaweedfs.store_options())
    return {"file": Store(built.url, cache_dir=work / "cache-file"), "s3": s3}


@pytest.fixture(scope="module", params=["s3", "file"])
def site(request: pytest.FixtureRequest, stores: dict[str, Store]) -> Iterator[Served]:
    with serve(create_app(stores[request.param], auth=False)) as served:
        yield served


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize("path", ["/d/many/hist", "/", "/v/big@1"], ids=["history-1000", "datasets-1000", "files-100k"])
def test_a_page_at_size_answers_within_a_second(site: Served, path: str) -> None:
    with site.client() as client:
        started = time.perf_counter()
        assert client.get(path).status_code == 200
        cold = time.perf_counter() - started
        warm = []
        for _ in range(5):
            started = time.perf_counter()
            assert client.get(path).status_code == 200
            warm.append(time.perf_counter() - started)
    print(f"{site.url}{path}: cold {cold:.3f} s, warm median {statistics.median(warm):.3f} s")
    assert statistics.median(warm) <= BOUND, f"{path}: {warm}"
    assert cold <= 5 * BOUND, f"{path}: cold {cold:.3f} s"


def test_rss_stays_flat_across_pages_of_a_big_version(site: Served) -> None:
    with site.client() as client:
        assert client.get("/v/big@1").status_code == 200
        rss = []
        for page in range(20):
            assert client.get("/v/big@1", params={"path": f"d{page:03d}"}).status_code == 200
            rss.append(_rss_kib())
    print(f"RSS KiB across 20 pages: {rss[0]} -> {rss[-1]} (max {max(rss)})")
    assert max(rss) - rss[0] < 50 * 1024, rss
