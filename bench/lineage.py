"""What lineage costs on a loopback SeaweedFS: downstream of a version with many consumers, ``stale`` over many
datasets, upstream of a long chain, and ``reindex``.

    python -m bench.lineage [--consumers 1000] [--datasets 100] [--chain 50]

Every version is a real commit (through ``Store.commit``, which writes the reverse edges); the reads go through
a counting proxy, so each line gives wall time and requests. See docs/benchmarks.md, "Lineage, metrics and
promotion".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gitfree import Store
from gitfree.testing import CountingProxy, SeaweedFS


def _timed(proxy: CountingProxy, work: Callable[[], Any]) -> tuple[Any, float, dict[str, int]]:
    proxy.take()
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    return result, elapsed, dict(proxy.take().requests)


def _source(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.csv").write_text(name)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=1000)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--chain", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SeaweedFS(bucket="bench-lineage") as server:
        root = Path(tmp)
        options = server.store_options()
        url = f"s3://{server.bucket}/lineage"
        writer = Store(url, cache_dir=root / "writer", **options)
        raw = writer.commit("raw", _source(root, "raw"))
        start = time.perf_counter()

        def consume(i: int) -> None:
            Store(url, cache_dir=root / f"w{i % 8}", **options).commit(
                f"consumers/c{i % args.datasets}", _source(root, f"c{i}"), inputs=[raw]
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(consume, range(args.consumers)))
        committed = time.perf_counter() - start
        previous = raw
        for i in range(args.chain):
            previous = writer.commit(f"chain/s{i}", _source(root, f"s{i}"), inputs=[previous])
        writer.commit("raw", _source(root, "raw2"))  # every consumer's head is now stale

        with CountingProxy(server.s3_port) as proxy:
            reader = Store(url, cache_dir=root / "reader", **{**options, "endpoint_url": proxy.endpoint})
            version = reader.show("raw@1")
            down, t_down, r_down = _timed(proxy, lambda: reader.lineage(version, "down", depth=1))
            stale, t_stale, r_stale = _timed(proxy, reader.stale)
            up, t_up, r_up = _timed(proxy, lambda: reader.lineage(previous.ref))
            report, t_re, r_re = _timed(proxy, reader.reindex)
            names = len(reader.datasets())
        print(f"setup: {args.consumers} commits made from raw@1 in {committed:.1f} s (8 threads)")
        print(
            f"downstream of raw@1, {len(down.consumers_of('raw@1'))} consumers: {t_down:.2f} s, "
            f"requests {sum(r_down.values())} {r_down}"
        )
        print(
            f"stale over {names} datasets ({len(stale)} stale): {t_stale:.2f} s, "
            f"requests {sum(r_stale.values())} {r_stale}"
        )
        print(f"upstream of a chain of {len(up.nodes)} versions: {t_up:.2f} s, requests {sum(r_up.values())} {r_up}")
        print(
            f"reindex of {report.versions} versions ({report.edges} edges, {len(report.written)} written): "
            f"{t_re:.2f} s, requests {sum(r_re.values())} {r_re}"
        )


if __name__ == "__main__":
    main()
