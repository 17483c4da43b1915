"""gitfree side by side with plain DVC+git and with the raw-transfer floor, on one loopback SeaweedFS.

    python -m bench [--size full|tiny] [--reps N] [--workloads small,large,mixed] [--out DIR]

Every operation runs in a fresh process (the parent records its wall time and peak RSS
with wait4); contenders run interleaved, rotating their order every repetition; one
extra repetition goes through a counting proxy for requests and bytes on the wire.
The report (markdown and JSON) gives medians and ratios to the floor and to DVC+git.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitfree.testing import CountingProxy

KiB, MiB = 1024, 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

WORKLOADS: dict[str, dict[str, dict[str, Any]]] = {
    "small": {
        "full": {"n": 10_000, "lo": 1 * KiB, "hi": 64 * KiB, "big": []},
        "tiny": {"n": 40, "lo": KiB, "hi": 16 * KiB, "big": []},
    },
    "large": {"full": {"n": 0, "big": [256 * MiB] * 4}, "tiny": {"n": 0, "big": [MiB] * 2}},
    "mixed": {
        "full": {"n": 2_000, "lo": 1 * KiB, "hi": 64 * KiB, "big": [512 * MiB]},
        "tiny": {"n": 20, "lo": KiB, "hi": 16 * KiB, "big": [2 * MiB]},
    },
}
HISTORY = {"full": 1000, "tiny": 30}
OPS = ["commit_cold", "commit_incremental", "commit_noop", "pull_cold", "pull_warm", "pull_same"]


# ---------------------------------------------------------------------------- data


def generate(root: Path, spec: dict[str, Any], seed: int) -> None:
    rng = random.Random(seed)
    for i in range(spec["n"]):
        path = root / f"d{i % 100:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(spec["lo"], spec["hi"])))
    for j, size in enumerate(spec["big"]):
        path = root / "big" / f"part{j}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for offset in range(0, size, 16 * MiB):
                f.write(rng.randbytes(min(16 * MiB, size - offset)))


def mutate(root: Path, seed: int) -> int:
    """Change 1% of the files (at least one) in place, add and remove a few; return bytes changed."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    changed = 0
    for path in rng.sample(files, max(1, len(files) // 100)):
        with open(path, "r+b") as f:
            f.write(rng.randbytes(min(4 * KiB, path.stat().st_size)))
        changed += path.stat().st_size
    small = [p for p in files if p.stat().st_size < MiB]
    if len(small) >= 20:
        for path in rng.sample(small, 5):  # removing a big file would make "1%" a third of the bytes
            path.unlink()
        for k in range(5):
            new = root / "added" / f"new{k}.bin"
            new.parent.mkdir(exist_ok=True)
            new.write_bytes(rng.randbytes(8 * KiB))
            changed += 8 * KiB
    return changed


def tree_size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# ---------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    seconds: float
    """The operation (for Python contenders: inside the process, after imports)."""
    wall: float
    """Whole processes, start-up included."""
    rss_mb: float
    counts: dict[str, Any] = field(default_factory=dict)


def run_commands(cmds: list[list[str]], env: dict[str, str], cwd: Path | None = None) -> Sample:
    """Run commands one after another; sum their times, take the largest peak RSS."""
    wall = inner = 0.0
    rss = 0.0
    for cmd in cmds:
        # Write back what earlier operations left dirty, so that no operation pays for another's
        # writeback (it made the warm pull and `cp -r` swing 4x between runs).
        os.sync()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)[:200]} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        wall += elapsed
        rss = max(rss, usage.ru_maxrss / 1024)
        try:
            inner += float(json.loads(stdout.strip().splitlines()[-1])["seconds"])
        except (ValueError, KeyError, IndexError):
            inner += elapsed
    return Sample(seconds=inner, wall=wall, rss_mb=rss)


def py_op(**args: Any) -> list[str]:
    return [sys.executable, "-m", "bench.ops", json.dumps(args)]


def _gitfree_cmd(name: str, **args: Any) -> list[str]:
    return py_op(kind="gitfree", op=name, dataset="ds", **args)


class Bench:
    def __init__(self, size: str, reps: int, workloads: list[str], out: Path, contenders: list[str]) -> None:
        self.size, self.reps, self.workloads, self.out = size, reps, workloads, out
        self.contenders = contenders
        self.work = Path(tempfile.mkdtemp(prefix="gitfree-bench-"))
        self.samples: dict[str, dict[str, dict[str, list[Sample]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        self.counts: dict[str, dict[str, dict[str, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
        self.info: dict[str, Any] = {"size": size, "reps": reps, "workloads": {}}
        self.proxy: CountingProxy | None = None
        """Set while a counting repetition runs: every sample then carries its requests and bytes."""
        self._history: tuple[str, Path] | None = None
        """The store URL and directory of the many-versions dataset, made once."""

    def run(self, cmds: list[list[str]], env: dict[str, str], cwd: Path | None = None) -> Sample:
        if self.proxy is None:
            return run_commands(cmds, env, cwd)
        self.proxy.take()
        sample = run_commands(cmds, env, cwd)
        sample.counts = self.proxy.take().as_dict()
        return sample

    # -- environment

    def env(self, endpoint: str) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
        }

    def creds(self, endpoint: str) -> dict[str, Any]:
        return {"endpoint": endpoint, "key": self.s3.access_key, "secret": self.s3.secret_key}

    def fresh(self, name: str) -> Path:
        path = self.work / f"{name}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    # -- contenders: each runs every op of one workload once, in order

    def gitfree(self, data: Path, seed: int, endpoint: str) -> dict[str, Sample]:
        env, creds = self.env(endpoint), self.creds(endpoint)
        base = self.fresh("gitfree")
        store = f"s3://{self.s3.bucket}/gitfree-{base.name}"
        src = base / "data"
        shutil.copytree(data, src, copy_function=shutil.copy2)
        cache1, cache2 = base / "cache-writer", base / "cache-reader"
        op = functools.partial(_gitfree_cmd, store=store, **creds)
        result = {"commit_cold": self.run([op("commit", cache=str(cache1), src=str(src))], env)}
        mutate(src, seed)
        result["commit_incremental"] = self.run([op("commit", cache=str(cache1), src=str(src))], env)
        result["commit_noop"] = self.run([op("commit", cache=str(cache1), src=str(src))], env)
        result["pull_cold"] = self.run([op("pull", cache=str(cache2), ref="ds", dest=str(base / "out1"))], env)
        result["pull_warm"] = self.run([op("pull", cache=str(cache2), ref="ds", dest=str(base / "out2"))], env)
        result["pull_same"] = self.run([op("pull", cache=str(cache2), ref="ds", dest=str(base / "out2"))], env)
        if self.size == "tiny":
            _same(src, base / "out1")
            _same(src, base / "out2")
        shutil.rmtree(base)
        return result

    def gitfree_cli(self, data: Path, seed: int, endpoint: str) -> dict[str, Sample]:
        env = self.env(endpoint)
        env.update(GITFREE_ACCESS_KEY_ID=self.s3.access_key, GITFREE_SECRET_ACCESS_KEY=self.s3.secret_key)
        base = self.fresh("cli")
        env["GITFREE_STORE"] = f"s3://{self.s3.bucket}/cli-{base.name}"
        env["GITFREE_CACHE_DIR"] = str(base / "cache")
        src = base / "data"
        shutil.copytree(data, src, copy_function=shutil.copy2)
        gitfree = str(BIN / "gitfree")
        result = {"commit_cold": self.run([[gitfree, "commit", "ds", str(src)]], env)}
        result["commit_noop"] = self.run([[gitfree, "commit", "ds", str(src)]], env)
        result["pull_warm"] = self.run([[gitfree, "pull", "ds", str(base / "out")]], env)
        result["pull_same"] = self.run([[gitfree, "pull", "ds", str(base / "out")]], env)
        shutil.rmtree(base)
        return result

    def dvc(self, data: Path, seed: int, endpoint: str) -> dict[str, Sample]:
        env = self.env(endpoint)
        base = self.fresh("dvc")
        repo = base / "repo"
        repo.mkdir()
        shutil.copytree(data, repo / "data", copy_function=shutil.copy2)
        url = f"s3://{self.s3.bucket}/dvc-{base.name}"
        dvc = str(BIN / "dvc")
        commit = [
            [dvc, "add", "-q", "data"],
            ["git", "add", "data.dvc", ".gitignore", ".dvc/config"],
            ["git", "commit", "-q", "--allow-empty", "-m", "version"],
            [dvc, "push", "-q"],
        ]
        init = [
            ["git", "init", "-q"],
            [dvc, "init", "-q"],
            [dvc, "remote", "add", "-d", "store", url],
            [dvc, "remote", "modify", "store", "endpointurl", endpoint],
        ]
        result = {"commit_cold": self.run(init + commit, env, repo)}
        mutate(repo / "data", seed)
        result["commit_incremental"] = self.run(commit, env, repo)
        result["commit_noop"] = self.run(commit, env, repo)
        clone1, clone2 = base / "clone1", base / "clone2"
        clone = self.run([["git", "clone", "-q", str(repo), str(clone1)]], env)
        result["pull_cold"] = _add(clone, self.run([[dvc, "pull", "-q"]], env, clone1))
        clone = self.run([["git", "clone", "-q", str(repo), str(clone2)]], env)
        # A second checkout on the same worker: the first clone's DVC cache is the warm cache.
        warm = self.run(
            [[dvc, "cache", "dir", "--local", str(clone1 / ".dvc" / "cache")], [dvc, "pull", "-q"]], env, clone2
        )
        result["pull_warm"] = _add(clone, warm)
        result["pull_same"] = self.run([[dvc, "pull", "-q"]], env, clone2)
        if self.size == "tiny":
            _same(repo / "data", clone1 / "data")
            _same(repo / "data", clone2 / "data")
        shutil.rmtree(base)
        return result

    def floor(self, data: Path, seed: int, endpoint: str) -> dict[str, Sample]:
        env, creds = self.env(endpoint), self.creds(endpoint)
        base = self.fresh("floor")
        prefix = f"floor-{base.name}"
        s5cmd = [str(BIN / "s5cmd"), "--endpoint-url", endpoint]
        md5 = self.run([py_op(kind="md5", src=str(data))], env)
        up = self.run([[*s5cmd, "cp", f"{data}/*", f"s3://{self.s3.bucket}/{prefix}/"]], env)
        down = self.run([[*s5cmd, "cp", f"s3://{self.s3.bucket}/{prefix}/*", f"{base / 'down'}/"]], env)
        md5_down = self.run([py_op(kind="md5", src=str(base / "down"))], env)
        copy = self.run([["cp", "-r", str(data), str(base / "copy")]], env)
        result = {
            "md5": md5,
            "s5cmd_upload": up,
            "s5cmd_download": down,
            "commit_cold": _add(md5, up),
            "pull_cold": _add(down, md5_down),
            "pull_warm": copy,
        }
        # 16, 32 and 64 threads measured within 11% of each other here (2,000 small files, put_object).
        boto3 = {"bucket": self.s3.bucket, "prefix": f"{prefix}-boto3", "threads": 32, **creds}
        result["boto3_upload_32"] = self.run([py_op(kind="boto3_upload", src=str(data), **boto3)], env)
        result["boto3_download_32"] = self.run([py_op(kind="boto3_download", dest=str(base / "b"), **boto3)], env)
        if self.size == "tiny":
            _same(data, base / "down")
        shutil.rmtree(base)
        return result

    # -- history: log and resolve over many versions

    def history(self, endpoint: str) -> dict[str, Sample]:
        from gitfree import Store
        from gitfree.versioning import layout

        env, creds = self.env(endpoint), self.creds(endpoint)
        if self._history is None:
            base = self.fresh("history")
            url = f"s3://{self.s3.bucket}/history-{base.name}"
            store = Store(url, cache_dir=base / "cache", **self.s3.store_options())  # type: ignore[arg-type]
            (base / "d").mkdir()
            (base / "d" / "f").write_bytes(b"x")
            first = store.commit("ds", base / "d")
            n = HISTORY[self.size]
            # Records as commits write them (the objects are the same for each): writing n records
            # directly keeps the setup to seconds; log and resolve read exactly what commits leave.
            for number in range(2, n + 1):
                record = first.model_copy(update={"number": number, "parent": number - 1, "id": uuid.uuid4()})
                store.backend.create(layout.version_key("ds", number), record.model_dump_json(indent=2).encode())
            store.catalog.advance_latest(store.catalog.version("ds", n))
            self._history = (url, base)
        url, base = self._history
        op = functools.partial(_gitfree_cmd, store=url, cache=str(base / "c2"), **creds)
        return {
            "log": self.run([op("log")], env),
            "resolve_latest": self.run([op("resolve", ref="ds")], env),
            "resolve_number": self.run([op("resolve", ref=f"ds@{HISTORY[self.size] // 2}")], env),
        }

    # -- the run

    def main(self) -> None:
        from gitfree.testing import SeaweedFS

        with SeaweedFS(bucket="bench") as self.s3, CountingProxy(self.s3.s3_port) as proxy:
            for workload in self.workloads:
                spec = WORKLOADS[workload][self.size]
                data = self.work / f"data-{workload}"
                print(f"[{workload}] generating {spec}", flush=True)
                generate(data, spec, seed=7)
                nfiles, nbytes = tree_size(data)
                self.info["workloads"][workload] = {"files": nfiles, "bytes": nbytes}
                names = list(self.contenders)
                for rep in range(self.reps + 1):
                    counting = rep == self.reps
                    endpoint = proxy.endpoint if counting else self.s3.endpoint
                    order = names[rep % len(names) :] + names[: rep % len(names)]
                    for name in order:
                        if name == "gitfree-cli" and workload != "small":
                            continue
                        proxy.take()
                        started = time.perf_counter()
                        result = self.measure(name, data, endpoint, proxy if counting else None)
                        for op, sample in result.items():
                            if counting:
                                self.counts[workload][op][name] = sample.counts
                            else:
                                self.samples[workload][op][name].append(sample)
                        print(
                            f"[{workload}] rep {rep + 1}/{self.reps}{' (counting)' if counting else ''} {name}: "
                            + ", ".join(f"{op} {s.seconds:.2f}s" for op, s in result.items())
                            + f" ({time.perf_counter() - started:.0f}s)",
                            flush=True,
                        )
                shutil.rmtree(data)
            for rep in range(self.reps + 1):
                counting = rep == self.reps
                endpoint = proxy.endpoint if counting else self.s3.endpoint
                proxy.take()
                for op, sample in self.measure_history(endpoint, proxy if counting else None).items():
                    if counting:
                        self.counts["history"][op]["gitfree"] = sample.counts
                    else:
                        self.samples["history"][op]["gitfree"].append(sample)
        self.write()

    def measure(self, name: str, data: Path, endpoint: str, proxy: CountingProxy | None) -> dict[str, Sample]:
        fn = {"gitfree": self.gitfree, "gitfree-cli": self.gitfree_cli, "dvc+git": self.dvc, "floor": self.floor}[name]
        self.proxy = proxy
        try:
            return fn(data, 11, endpoint)
        finally:
            self.proxy = None

    def measure_history(self, endpoint: str, proxy: CountingProxy | None) -> dict[str, Sample]:
        self.proxy = proxy
        try:
            return self.history(endpoint)
        finally:
            self.proxy = None

    # -- the report

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        raw = {
            "info": self.info,
            "samples": {
                w: {o: {c: [asdict(s) for s in ss] for c, ss in cs.items()} for o, cs in os_.items()}
                for w, os_ in self.samples.items()
            },
            "counts": self.counts,
        }
        (self.out / "results.json").write_text(json.dumps(raw, indent=1))
        report = render(raw)
        (self.out / "report.md").write_text(report)
        print(report)
        shutil.rmtree(self.work, ignore_errors=True)


def _add(a: Sample, b: Sample) -> Sample:
    return Sample(a.seconds + b.seconds, a.wall + b.wall, max(a.rss_mb, b.rss_mb), _merge(a.counts, b.counts))


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if not a or not b:
        return a or b
    methods = dict(a.get("by_method", {}))
    for k, v in b.get("by_method", {}).items():
        methods[k] = methods.get(k, 0) + v
    return {
        "requests": a["requests"] + b["requests"],
        "by_method": methods,
        "bytes_up": a["bytes_up"] + b["bytes_up"],
        "bytes_down": a["bytes_down"] + b["bytes_down"],
    }


def _same(a: Path, b: Path) -> None:
    left = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    right = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    if left != right:
        raise RuntimeError(f"{b} does not hold the same files as {a}")


# ---------------------------------------------------------------------------- report


def render(raw: dict[str, Any]) -> str:
    from bench.report import render as render_report

    return render_report(raw)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", default="small,large,mixed")
    parser.add_argument("--contenders", default="gitfree,gitfree-cli,dvc+git,floor")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    args = parser.parse_args()
    Bench(args.size, args.reps, args.workloads.split(","), args.out, args.contenders.split(",")).main()


if __name__ == "__main__":
    main()
