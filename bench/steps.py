"""What a versioned step costs on a loopback SeaweedFS: a call that is up to date (no pull, no body) against
the run that made the version, and against only pulling its input.

    python -m bench.steps [--files 200] [--size 100000] [--reps 20]

The input is ``--files`` files of ``--size`` bytes; the step's body reads every file and writes one. Every
request goes through a counting proxy, so each line gives wall time and exact requests. See
docs/benchmarks.md, "Versioned steps".
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from gitfree import Store, step
from gitfree.testing import CountingProxy, SeaweedFS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SeaweedFS(bucket="bench-steps") as server:
        root = Path(tmp)
        options = server.store_options()
        url = f"s3://{server.bucket}/steps"
        source = root / "raw"
        source.mkdir()
        for i in range(args.files):
            (source / f"part-{i:05d}.bin").write_bytes(os.urandom(args.size))
        Store(url, cache_dir=root / "writer", **options).commit("raw", source)
        with CountingProxy(server.s3_port) as proxy:
            store = Store(url, cache_dir=root / "worker", **{**options, "endpoint_url": proxy.endpoint})

            @step(output="features", inputs={"raw": "raw@latest"}, store=store)
            def featurize(raw: Path, out: Path) -> None:
                total = sum(len(p.read_bytes()) for p in raw.iterdir())
                (out / "total.txt").write_text(str(total))

            proxy.take()
            start = time.perf_counter()
            featurize()
            first, first_requests = time.perf_counter() - start, dict(proxy.take().requests)
            times = []
            for _ in range(args.reps):
                start = time.perf_counter()
                featurize()
                times.append(time.perf_counter() - start)
            skip_requests = {k: v // args.reps for k, v in proxy.take().requests.items()}
            fresh = Store(url, cache_dir=root / "fresh", **{**options, "endpoint_url": proxy.endpoint})
            start = time.perf_counter()
            fresh.pull("raw", root / "pulled")
            pull, pull_requests = time.perf_counter() - start, dict(proxy.take().requests)
        mb = args.files * args.size / 1e6
        print(f"input: raw@1, {args.files} files, {mb:.0f} MB")
        print(
            f"first call (pull, body, commit): {first:.2f} s, requests {sum(first_requests.values())} {first_requests}"
        )
        print(
            f"up to date, median of {args.reps}: {statistics.median(times) * 1000:.1f} ms "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}), requests per call "
            f"{sum(skip_requests.values())} {skip_requests}, 0 bytes of data"
        )
        print(f"pulling the input alone (empty cache): {pull:.2f} s, requests {sum(pull_requests.values())}")


if __name__ == "__main__":
    main()
