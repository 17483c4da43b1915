"""GC judged a step's claim dead and deleted it after reading it: a worker that took the dead claim over in
between lost its live claim, a second worker found none, and both ran the step: two versions for one key.
GC now counts dead claims and deletes none (the next call takes a dead one over by compare-and-swap)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from helpers import write_tree

from gitfree import Step, Store, Version, step
from gitfree.faults import Faults
from gitfree.versioning import layout
from gitfree.versioning.leases import Holder


def test_a_claim_taken_over_while_gc_judged_it_dead_stays(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    base = Store(url, cache_dir=tmp_path / "c0")
    base.commit("raw", write_tree(tmp_path / "raw", {"a.csv": b"hello"}))
    runs: list[str] = []

    def worker(n: int) -> Step:
        @step("features", {"raw": "raw"}, store=Store(url, cache_dir=tmp_path / f"c{n}"))
        def featurize(raw: Path, out: Path) -> None:
            runs.append(threading.current_thread().name)
            time.sleep(1)
            (out / "f.csv").write_text(str(uuid.uuid4()))  # not deterministic: a timestamp, a seed

        return featurize

    a, b = worker(1), worker(2)
    call = a.bind()
    claim = layout.step_claim_key(a.key(a.resolve(call, base), call.params))
    dead = Holder.new(base.backend, base.coordinator.ttl, key=claim, kind="step")
    lease = dead.lease.model_copy(update={"pid": 2**22 + 1, "expires_at": dead.lease.created_at - timedelta(days=1)})
    base.backend.create(claim, lease.model_dump_json().encode())  # a worker that died running the step
    gc_store = Store(url, cache_dir=tmp_path / "gc")
    results: list[Version] = []
    with Faults(gc_store) as faults:
        paused = faults.pause("delete", re.compile(re.escape(claim)))
        gc = threading.Thread(target=gc_store.gc)
        gc.start()
        deadline = time.monotonic() + 10
        while gc.is_alive() and not paused.reached.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        first = threading.Thread(target=lambda: results.append(a()), name="A")
        first.start()
        time.sleep(0.5)  # A has taken the dead claim over and runs the body
        paused.resume.set()
        gc.join()
        second = threading.Thread(target=lambda: results.append(b()), name="B")
        second.start()
        first.join()
        second.join()
    assert runs == ["A"]
    assert sorted(v.ref for v in results) == ["features@1", "features@1"]
    assert [v.ref for v in base.log("features")] == ["features@1"]
