"""Run notes (docs/design.md, "Lineage inside orchestrator runs"): a version pulled in an orchestrator run is
noted in its store, and a commit in the same run finds it there, whatever process or machine it runs on.

Against SeaweedFS and the file backend (the ``store`` fixture), and a second SeaweedFS whose reader
credential may read and list but not write (a worker with a read-only role).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree
from seaweedfs_reader import WithReader

from gitfree import InputError, InputRef, Store
from gitfree.cli import cli
from gitfree.testing import Clock, Faults
from gitfree.versioning import layout
from gitfree.versioning.gc import RUN_NOTES_KEPT
from gitfree.versioning.models import RunNote

AIRFLOW_RUN = "airflow:nightly_ingest:scheduled__2026-05-01T10:00:00+00:00"
HOSTILE_RUNS = [
    AIRFLOW_RUN,
    "airflow:nightly_ingest:scheduled__2026-05-01T10_00_00_00_00",  # the same slug as the one above
    "prefect:../../datasets/raw/versions",
    "run with spaces/and/slashes\nand a newline",
    "ünïcødé-run-🚀",
    "x" * 1024,
    "%2e%2e%2f",
]


def _notes(store: Store) -> list[str]:
    return sorted(k for k in store.backend.list(layout.RUNS))


def test_a_version_noted_in_a_run_is_an_input_of_that_run_only(store: Store, tmp_path: Path) -> None:
    one = store.commit("raw", write_tree(tmp_path / "r1", {"r": b"1"}))
    two = store.commit("raw", write_tree(tmp_path / "r2", {"r": b"2"}))
    store.commit("other/table", write_tree(tmp_path / "t", {"t": b"t"}))
    assert store.note_use("prefect:run-a", one, task="pull-1") is True
    assert store.note_use("prefect:run-a", "other/table@1") is True
    assert store.note_use("prefect:run-b", two) is True

    noted = [InputRef(dataset="other/table", number=1), InputRef(dataset="raw", number=1)]
    assert store.used_in("prefect:run-a") == noted
    assert store.used_in("prefect:run-b") == [InputRef(dataset="raw", number=2)]
    assert store.used_in("prefect:run-c") == []

    key = layout.run_use_key("prefect:run-a", "raw", 1)
    first = RunNote.model_validate_json(store.backend.get(key)[0])
    assert (first.run, first.ref, first.version_id, first.store, first.task) == (
        "prefect:run-a",
        "raw@1",
        one.id,
        store.url,
        "pull-1",
    )
    # A second pull of the same version in the run (a retried task): the first note stays, nothing is added.
    assert store.note_use("prefect:run-a", one, task="pull-1 again") is True
    assert RunNote.model_validate_json(store.backend.get(key)[0]) == first
    assert len(_notes(store)) == 3

    # The noted versions become inputs of a commit in the run; given explicitly too, each is one input.
    made = store.commit(
        "clean", write_tree(tmp_path / "c", {"c": b"c"}), inputs=["raw@1", *store.used_in("prefect:run-a")]
    )
    assert made.inputs == [InputRef(dataset="raw", number=1), InputRef(dataset="other/table", number=1)]


def test_any_run_id_is_one_plain_key_and_never_anothers(store: Store, tmp_path: Path) -> None:
    """Airflow's run ids have ':' and '+'; two ids with the same slug, a path in an id, a newline, 1024
    characters: in one store at once, each run has its own notes, under runs/ and nowhere else."""
    versions = [store.commit("raw", write_tree(tmp_path / f"r{n}", {"r": bytes([n])})) for n in range(2)]
    for n, run in enumerate(HOSTILE_RUNS):
        assert store.note_use(run, versions[n % 2])
    assert [store.used_in(run) for run in HOSTILE_RUNS] == [
        [InputRef(dataset="raw", number=n % 2 + 1)] for n in range(len(HOSTILE_RUNS))
    ]
    keys = _notes(store)
    assert len(keys) == len(HOSTILE_RUNS) == len({key.split("/")[1] for key in keys})
    for run in HOSTILE_RUNS:
        [key] = [key for key in keys if key.startswith(layout.run_prefix(run))]
        assert "\n" not in key and ".." not in key.split("/") and key.count("/") == 2
    assert store.fsck().ok


@pytest.mark.parametrize("run", ["", "   ", "x" * 1025, "lone \ud800 surrogate", None])
def test_a_bad_run_id_is_refused_in_one_line(store: Store, run: object) -> None:
    with pytest.raises(InputError, match="run id") as note:
        store.note_use(run, "raw@1")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="run id"):
        store.used_in(run)  # type: ignore[arg-type]
    assert "\n" not in str(note.value)
    assert _notes(store) == []


def test_bad_notes_are_skipped_with_a_warning(store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A corrupted note, one copied from another run, and one naming a version the store no longer has at
    that number (a store made anew at the same URL) make no input; the good note still does."""
    run = "prefect:run-1"
    store.commit("raw", write_tree(tmp_path / "r", {"r": b"1"}))
    store.commit("good", write_tree(tmp_path / "g", {"g": b"1"}))
    store.commit("stale", write_tree(tmp_path / "s", {"s": b"1"}))
    store.commit("copied", write_tree(tmp_path / "o", {"o": b"1"}))
    assert store.note_use(run, "good@1")
    store.backend.put(layout.run_use_key(run, "raw", 1), b'{"format": 1, "run": "prefect:run-1", "datas')
    assert store.note_use("prefect:another-run", "copied@1")
    raw, _ = store.backend.get(layout.run_use_key("prefect:another-run", "copied", 1))
    store.backend.put(layout.run_use_key(run, "copied", 1), raw)
    assert store.note_use(run, "stale@1")
    note = RunNote.model_validate_json(store.backend.get(layout.run_use_key(run, "stale", 1))[0])
    forged = note.model_copy(update={"version_id": uuid.uuid4()})
    store.backend.put(layout.run_use_key(run, "stale", 1), forged.model_dump_json().encode())
    store.backend.put(f"{layout.run_prefix(run)}not-a-note.txt", b"junk")  # not a note's key: not read

    with caplog.at_level(logging.WARNING, logger="gitfree"):
        assert store.used_in(run) == [InputRef(dataset="good", number=1)]
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert f"skipped the run note {layout.run_use_key(run, 'raw', 1)}" in warned and "not valid JSON" in warned
    assert "names copied@1 in the run 'prefect:another-run'" in warned
    assert "stale@1 is another version" in warned
    assert store.fsck().ok  # fsck reads no note: notes are neither records nor foreign objects


def test_a_noted_version_gc_dropped_since_stays_an_input(store: Store, tmp_path: Path) -> None:
    """raw@1 was pulled; before the run commits, a GC drops it. The data was made from it, and its number
    names it forever (its tombstone): it stays an input. A note of a version never committed is none."""
    run = "airflow:dag:manual__2026-01-01T00:00:00+00:00"
    one = store.commit("raw", write_tree(tmp_path / "r1", {"r": b"1"}))
    store.note_use(run, one)
    store.commit("raw", write_tree(tmp_path / "r2", {"r": b"2"}))
    assert store.gc(keep_last=1).versions_deleted == ["raw@1"]
    assert store.used_in(run) == [InputRef(dataset="raw", number=1)]
    made = store.commit("clean", write_tree(tmp_path / "c", {"c": b"c"}), inputs=store.used_in(run))
    assert made.inputs == [InputRef(dataset="raw", number=1)]

    ghost = RunNote(
        run=run, dataset="raw", number=9, version_id=uuid.uuid4(), store=store.url, created_at=one.created_at
    )
    store.backend.put(layout.run_use_key(run, "raw", 9), ghost.model_dump_json().encode())
    assert store.used_in(run) == [InputRef(dataset="raw", number=1)]


def test_a_lost_answer_to_the_note_is_settled(store: Store, tmp_path: Path) -> None:
    version = store.commit("raw", write_tree(tmp_path / "r", {"r": b"1"}))
    with Faults(store) as faults:
        lost = faults.lose("create", layout.run_use_key("prefect:r", "raw", 1))
        assert store.note_use("prefect:r", version) is True
    assert lost.fired
    assert store.used_in("prefect:r") == [InputRef(dataset="raw", number=1)]


def test_gc_removes_only_notes_past_their_retention(store: Store, tmp_path: Path) -> None:
    version = store.commit("raw", write_tree(tmp_path / "r", {"r": b"1"}))
    for n in range(3):
        store.note_use(f"prefect:old-{n}", version)
    foreign = f"{layout.RUNS}README"  # under runs/ but not a note: not known to be gitfree's
    store.backend.put(foreign, b"someone's file")
    with Clock() as clock:
        clock.advance(RUN_NOTES_KEPT - timedelta(hours=1))
        store.note_use("prefect:young", version)  # written now: the server's time, not the moved clock
        assert store.gc(dry_run=True).run_notes_removed == 0
        clock.advance(hours=2)  # the three first notes are now past the retention, the young one too
        assert store.gc(dry_run=True).run_notes_removed == 4
        assert len(_notes(store)) == 5, "a dry run removes nothing"
    with Clock() as clock:
        clock.advance(RUN_NOTES_KEPT + timedelta(minutes=1))
        report = store.gc()
    assert report.run_notes_removed == 4
    assert _notes(store) == [foreign]
    assert store.show("raw@1") == version  # notes are no GC roots, and removing them touches no version
    if store.backend.url.startswith("file:"):
        assert sorted(p.name for p in (Path(store.backend.root) / "runs").iterdir()) == ["README"]  # type: ignore[attr-defined]


def test_cli_gc_dry_run_counts_expired_notes(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not store.url.startswith("file:"):
        pytest.skip("the CLI's output is the same for both backends; the file store needs no credentials")
    store.note_use("prefect:r", store.commit("raw", write_tree(tmp_path / "r", {"r": b"1"})))
    monkeypatch.setenv("GITFREE_STORE", store.url)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cli-cache"))
    with Clock() as clock:
        clock.advance(RUN_NOTES_KEPT + timedelta(days=1))
        result = CliRunner().invoke(cli, ["gc", "--dry-run"])
        as_json = CliRunner().invoke(cli, ["gc", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert "1 run note(s) over 30 days old (lineage of finished orchestrator runs) would be removed" in result.output
    assert json.loads(as_json.output)["run_notes_removed"] == 1
    assert len(_notes(store)) == 1


# ---------------------------------------------------------------------------- a worker that may only read


@pytest.fixture(scope="module")
def with_reader() -> Iterator[WithReader]:
    server = WithReader(bucket="gitfree-readonly")  # its __enter__ says SeaweedFS
    with server:
        yield server


def test_a_worker_that_may_not_write_still_pulls(
    with_reader: WithReader, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"s3://{with_reader.bucket}/t-{uuid.uuid4().hex[:8]}"
    writer = Store(url, cache_dir=tmp_path / "w", **with_reader.store_options())
    version = writer.commit("raw", write_tree(tmp_path / "r", {"r": b"raw"}))
    reader = Store(url, cache_dir=tmp_path / "reader", **with_reader.reader_options())
    assert reader.pull("raw@1", tmp_path / "out") == tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="gitfree"):
        assert reader.note_use("prefect:r", version) is False
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("raw@1 was pulled, but noting it as used in the run 'prefect:r' in")
    assert "denied access" in warning and "unless it is passed in inputs" in warning
    assert reader.used_in("prefect:r") == []  # the reader may list: no note, no input
    assert _notes(writer) == []
