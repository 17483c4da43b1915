"""A property-based state machine against the real server: commits, crashes, tags, pulls and GC in any
order, with the store checked against a model after every step."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from figures import FULL, Figures
from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from helpers import read_tree, write_tree
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from gitfree import GitfreeError, Store
from gitfree.testing import Faults, SeaweedFS

DATASETS = st.sampled_from(["a", "b"])
FILES = st.dictionaries(
    st.sampled_from(["x", "y", "sub/z", "sub/deeper/w"]),
    st.sampled_from([b"", b"one", b"two", b"shared by all", b"\x00\xff" * 300]),
    min_size=1,
    max_size=4,
)


VERSIONS = re.compile(r"^datasets/[^/]+/versions/")


class Crash(Exception):
    """Stands for the process dying at that step (the store must not care which)."""


def run_machine(seaweedfs: SeaweedFS, tmp_path: Path, figures: Figures) -> None:
    totals = {"steps": 0, "commits": 0, "crashes": 0, "gcs": 0, "pulls": 0, "deleted": 0}

    class StoreMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.root = tmp_path / uuid.uuid4().hex[:8]
            self.url = f"s3://{seaweedfs.bucket}/sm-{self.root.name}"
            self.store = self._store()
            self.model: dict[str, dict[int, dict[str, bytes]]] = {"a": {}, "b": {}}
            self.head: dict[str, int] = {"a": 0, "b": 0}
            self.tags: dict[tuple[str, str], int] = {}

        def _store(self, progress: Any = None) -> Store:
            options: dict[str, Any] = seaweedfs.store_options()
            return Store(self.url, cache_dir=self.root / "cache", progress=progress, **options)

        def _src(self, files: dict[str, bytes]) -> Path:
            return write_tree(self.root / "src" / uuid.uuid4().hex[:8], files)

        @rule(dataset=DATASETS, files=FILES)
        def commit(self, dataset: str, files: dict[str, bytes]) -> None:
            version = self.store.commit(dataset, self._src(files))
            totals["commits"] += 1
            head = self.head[dataset]
            if head and self.model[dataset].get(head) == files:
                assert version.number == head, "an unchanged commit made a new version"
                return
            assert version.number == head + 1
            self.model[dataset][version.number] = files
            self.head[dataset] = version.number

        @rule(dataset=DATASETS, files=FILES, step=st.sampled_from(["upload", "record", "latest"]))
        def crash(self, dataset: str, files: dict[str, bytes], step: str) -> None:
            class DieUploading(Callback):  # type: ignore[misc]  # fsspec is untyped
                def call(self, *args: Any, **kwargs: Any) -> None:
                    if self.value >= 1:
                        raise Crash(step)

            def progress(description: str, unit: str) -> Callback:
                return DieUploading() if step == "upload" and description.startswith("Uploading") else DEFAULT_CALLBACK

            store = self._store(progress)
            head = self.head[dataset]
            unchanged = bool(head) and self.model[dataset].get(head) == files
            try:
                with Faults(store) as faults:
                    if step == "record":  # before the version record is sent
                        faults.fail("create", VERSIONS, error=Crash(step), times=None)
                    elif step == "latest":  # once it is written, before latest.json
                        faults.fail("create", VERSIONS, error=Crash(step), times=None, when="after")
                    store.commit(dataset, self._src(files))
            except (Crash, GitfreeError) as exc:  # DVC reports a failure inside its transfer as its own
                if not isinstance(exc, Crash) and step != "upload":
                    raise
                totals["crashes"] += 1
                if step == "latest":  # the record was written before the "crash"
                    self.head[dataset] = head + 1
                    self.model[dataset][head + 1] = files
            else:
                # Nothing to upload or record when the data is unchanged or already uploaded.
                assert unchanged or step == "upload"
                if not unchanged:
                    self.head[dataset] = head + 1
                    self.model[dataset][head + 1] = files

        @precondition(lambda self: any(self.model.values()))
        @rule(data=st.data(), name=st.sampled_from(["prod", "dev"]))
        def tag(self, data: st.DataObject, name: str) -> None:
            dataset = data.draw(st.sampled_from([d for d, vs in self.model.items() if vs]))
            number = data.draw(st.sampled_from(sorted(self.model[dataset])))
            self.store.tag(f"{dataset}@{number}", name, move=True)
            self.tags[dataset, name] = number

        @precondition(lambda self: any(self.model.values()))
        @rule(data=st.data())
        def pull(self, data: st.DataObject) -> None:
            dataset = data.draw(st.sampled_from([d for d, vs in self.model.items() if vs]))
            number = data.draw(st.sampled_from(sorted(self.model[dataset])))
            reader = Store(self.url, cache_dir=self.root / f"reader-{number % 2}", **seaweedfs.store_options())
            out = reader.pull(f"{dataset}@{number}", self.root / "out" / uuid.uuid4().hex[:8])
            assert read_tree(out) == self.model[dataset][number]
            totals["pulls"] += 1

        @rule(keep_last=st.integers(min_value=1, max_value=3))
        def gc(self, keep_last: int) -> None:
            report = self.store.gc(keep_last=keep_last, grace=timedelta(0))
            expected = []
            for dataset, versions in self.model.items():
                if not versions:
                    continue
                numbers = sorted(versions)
                tagged = {n for (d, _), n in self.tags.items() if d == dataset}
                keep = set(numbers[-keep_last:]) | {self.head[dataset]} | tagged
                for n in numbers:
                    if n not in keep:
                        expected.append(f"{dataset}@{n}")
                        del versions[n]
            assert sorted(report.versions_deleted) == sorted(expected)
            totals["gcs"] += 1
            totals["deleted"] += report.objects_deleted

        @invariant()
        def store_matches_model(self) -> None:
            totals["steps"] += 1
            for dataset, versions in self.model.items():
                if not versions:
                    continue
                assert sorted(v.number for v in self.store.log(dataset)) == sorted(versions)
                assert self.store.show(dataset).number == self.head[dataset]
            for (dataset, name), number in self.tags.items():
                assert self.store.show(f"{dataset}@{name}").number == number
            report = self.store.fsck()
            assert report.ok, report.problems

    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=25 if FULL else 5,
            stateful_step_count=30 if FULL else 12,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    figures.add(
        "state machine",
        f"{totals['steps']} steps checked against the model (versions, head, tags, fsck): {totals['commits']} "
        f"commits, {totals['crashes']} crashes, {totals['pulls']} pulls, {totals['gcs']} GCs deleting "
        f"{totals['deleted']} objects, objects wrongly deleted: 0 (fsck clean after every step); "
        "0 invariant violations",
    )


@pytest.mark.timeout(1800 if FULL else 300)
def test_store_state_machine(seaweedfs: SeaweedFS, tmp_path: Path, figures: Figures) -> None:
    run_machine(seaweedfs, tmp_path, figures)
