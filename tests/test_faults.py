"""gitfree.testing's fault seam: each action of ``Faults`` on the S3 (SeaweedFS), Azure Blob (Azurite), Google
Cloud Storage (fake-gcs-server) and file backends, and the controllable ``Clock``."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import ALL_KINDS, kind_of, read_tree, write_tree

from gitfree import ConfigError, GitfreeError, Store
from gitfree.testing import Call, Clock, Faults, InjectedFault
from gitfree.versioning import layout, leases
from gitfree.versioning.backends import FileBackend, KeyExists, KeyMissing, OutcomeUnknown, PreconditionFailed
from gitfree.versioning.models import utcnow

VERSIONS = re.compile(r"^datasets/[^@]+/versions/")

# On Azurite and fake-gcs-server too: the wrapper, the conditional writes' answers and their loss, a dropped
# condition, another worker's interleaved write and a failed transfer (the rest of the seam is the same code
# on every kind of store).


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# ---------------------------------------------------------------------------- installing


@pytest.mark.kinds(*ALL_KINDS)
def test_the_wrapper_is_installed_everywhere_and_removed_on_exit(store: Store) -> None:
    real = store.backend
    with Faults(store) as faults:
        assert store.backend is faults.backend
        assert store.catalog.backend is store.objects.backend is store.coordinator.backend is faults.backend
        assert faults.backend.inner is real
        assert isinstance(store.backend, type(real)), "code asking what kind of store it is gets the same answer"
        assert store.backend.url == real.url
        if isinstance(real, FileBackend):
            assert store.backend.root == real.root
    assert store.backend is store.catalog.backend is store.objects.backend is store.coordinator.backend is real


def test_without_rules_everything_passes_through(store: Store, tmp_path: Path) -> None:
    with Faults(store) as faults:
        first = store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1", "b/c": b"2"}))
        store.tag(first, "prod")
        store.commit("ds", write_tree(tmp_path / "v2", {"a": b"3"}))
        assert store.gc(keep_last=1, grace=timedelta(0)).versions_deleted == []  # tagged
        assert read_tree(store.pull("ds@prod", tmp_path / "out")) == {"a": b"1", "b/c": b"2"}
        assert store.fsck(deep=True).ok
    assert faults.fired == []


def test_rules_match_by_operation_and_key(store: Store) -> None:
    with Faults(store) as faults:
        prefix = faults.fail("put", "x/")
        pattern = faults.fail(["get", "exists"], re.compile(r"\.json$"), times=None)
        predicate = faults.fail("*", lambda key: key.endswith("/odd"), times=None)
        store.backend.put("y/a", b"1")  # not under x/
        with pytest.raises(InjectedFault):
            store.backend.put("x/a", b"1")
        store.backend.put("x/a", b"1")  # times=1: the second one passes
        with pytest.raises(InjectedFault):
            store.backend.get("y/a.json")
        with pytest.raises(InjectedFault):
            store.backend.exists("y/a.json")
        assert store.backend.get("x/a")[0] == b"1"
        with pytest.raises(InjectedFault):
            store.backend.size("z/odd")
        assert prefix.fired == ["x/a"]
        assert pattern.fired == ["y/a.json", "y/a.json"]
        assert predicate.fired == ["z/odd"]
        assert [(c.action, c.op, c.key) for c in faults.fired] == [
            ("fail", "put", "x/a"),
            ("fail", "get", "y/a.json"),
            ("fail", "exists", "y/a.json"),
            ("fail", "size", "z/odd"),
        ]
        with pytest.raises(ValueError, match="unknown operation"):
            faults.fail("move")


def test_skip_and_times(store: Store) -> None:
    with Faults(store) as faults:
        rule = faults.fail("put", "k/", skip=1, times=2)
        outcomes = []
        for i in range(5):
            try:
                store.backend.put(f"k/{i}", b"x")
                outcomes.append("ok")
            except InjectedFault:
                outcomes.append("failed")
        assert outcomes == ["ok", "failed", "failed", "ok", "ok"]
        assert rule.fired == ["k/1", "k/2"]
        assert sorted(store.backend.list("k/")) == ["k/0", "k/3", "k/4"]


# ---------------------------------------------------------------------------- fail


def test_fail_raises_instead_of_doing_the_operation(store: Store, tmp_path: Path) -> None:
    with Faults(store) as faults:
        faults.fail("create", "x/", error=ConnectionResetError)
        with pytest.raises(ConnectionResetError, match="x/a"):
            store.backend.create("x/a", b"1")
        assert not store.backend.exists("x/a"), "a failure before the request wrote nothing"
        faults.fail("put", layout.UPLOADS, error=GitfreeError("the journal could not be written; retry"))
        with pytest.raises(GitfreeError, match="journal could not be written"):
            store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert store.datasets() == []
    assert not list(store.backend.list(layout.LEASES)), "the failed commit released its lease"
    assert store.commit("ds", tmp_path / "src").number == 1


def test_fail_after_the_operation_did_it(store: Store) -> None:
    with Faults(store) as faults:
        faults.fail("put", "x/", error=TimeoutError("cut"), when="after")
        with pytest.raises(TimeoutError, match="cut"):
            store.backend.put("x/a", b"written")
    assert store.backend.get("x/a")[0] == b"written"


@pytest.mark.kinds(*ALL_KINDS)
def test_scripted_answers_of_a_conditional_write(store: Store) -> None:
    """``error`` can be any of the backend's answers, e.g. a create told the key exists."""
    with Faults(store) as faults:
        faults.fail("create", "x/", error=KeyExists)
        faults.fail("replace", "x/", error=PreconditionFailed)
        faults.fail("get", "y/", error=KeyMissing)
        with pytest.raises(KeyExists):
            store.backend.create("x/a", b"1")
        store.backend.put("x/a", b"1")
        _, etag = store.backend.get("x/a")
        with pytest.raises(PreconditionFailed):
            store.backend.replace("x/a", b"2", etag)
        store.backend.put("y/b", b"1")
        with pytest.raises(KeyMissing):
            store.backend.get("y/b")


# ---------------------------------------------------------------------------- lose


@pytest.mark.kinds(*ALL_KINDS)
def test_lose_does_the_write_then_loses_its_answer(store: Store, tmp_path: Path) -> None:
    with Faults(store) as faults:
        lost = faults.lose("create", VERSIONS)
        version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
        faults.lose("create", "x/")
        with pytest.raises(OutcomeUnknown):
            store.backend.create("x/a", b"landed")
        assert store.backend.get("x/a")[0] == b"landed"
        with pytest.raises(ValueError, match="only writes"):
            faults.lose("get")
    assert lost.fired == [layout.version_key("ds", 1)]
    assert version.created and [v.number for v in store.log("ds")] == [1]


@pytest.mark.kinds(*ALL_KINDS)
def test_lose_on_a_batch_of_deletes(store: Store) -> None:
    for key in ("x/1", "x/2", "y/3"):
        store.backend.put(key, b"1")
    with Faults(store) as faults:
        rule = faults.lose("delete_many", "y/")
        store.backend.delete_many(["x/1"])  # no key under y/: untouched
        with pytest.raises(OutcomeUnknown):
            store.backend.delete_many(["x/2", "y/3"])
    assert rule.fired == ["y/3"]
    assert list(store.backend.list("")) == [], "the whole batch was deleted before its answer was lost"


# ---------------------------------------------------------------------------- delay


def test_delay_before_and_after(store: Store) -> None:
    store.backend.put("x/a", b"1")
    with Faults(store) as faults:
        faults.delay("get", "x/", seconds=0.3)
        faults.delay("list", "x/", seconds=0.3, when="after")
        started = time.monotonic()
        assert store.backend.get("x/a")[0] == b"1"
        assert list(store.backend.list("x/")) == ["x/a"]
        assert time.monotonic() - started >= 0.6
        store.backend.put("y/a", b"1")
        started = time.monotonic()
        store.backend.get("y/a")
        assert time.monotonic() - started < 0.3, "a delay for x/ slowed down another key"


# ---------------------------------------------------------------------------- pause


def test_pause_holds_the_call_until_resumed(store: Store) -> None:
    with Faults(store) as faults:
        before = faults.pause("create", "x/")
        thread, out = _in_thread(lambda: store.backend.create("x/a", b"1"))
        assert before.reached.wait(30)
        assert not store.backend.exists("x/a"), "paused before: nothing written yet"
        before.resume.set()
        thread.join(30)
        assert "error" not in out and store.backend.exists("x/a")

        after = faults.pause("put", "x/", when="after")
        thread, out = _in_thread(lambda: store.backend.put("x/b", b"2"))
        assert after.reached.wait(30)
        assert store.backend.get("x/b")[0] == b"2", "paused after: written, its answer held back"
        assert thread.is_alive()
        after.resume.set()
        thread.join(30)
        assert "error" not in out


def test_a_commit_paused_between_upload_and_record(store: Store, tmp_path: Path) -> None:
    """The interleaving the seam was made for: a commit held after its upload, while another worker reads."""
    with Faults(store) as faults:
        paused = faults.pause("create", VERSIONS)
        writer, out = _in_thread(lambda: store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"})))
        assert paused.reached.wait(60)
        assert len(list(store.backend.list(layout.LEASES))) == 1, "held under its lease"
        assert list(store.backend.list(layout.OBJECTS)), "its objects are uploaded"
        assert store.datasets() == [], "and its record is not written"
        paused.resume.set()
        writer.join(60)
    assert out["value"].number == 1


def test_leaving_lets_held_calls_go_and_a_pause_times_out(store: Store) -> None:
    with Faults(store) as faults:
        held = faults.pause("put", "x/")
        thread, out = _in_thread(lambda: store.backend.put("x/a", b"1"))
        assert held.reached.wait(30)
    thread.join(30)
    assert not thread.is_alive() and "error" not in out
    with Faults(store) as faults:
        faults.pause("put", "x/", timeout=0.2)
        with pytest.raises(AssertionError, match="never resumed"):
            store.backend.put("x/b", b"1")


# ---------------------------------------------------------------------------- drop the condition


@pytest.mark.kinds(*ALL_KINDS)
def test_drop_condition_makes_conditional_writes_plain_puts(store: Store) -> None:
    with Faults(store) as faults:
        faults.drop_condition("create", "x/")
        faults.drop_condition("replace", "x/")
        etag = store.backend.create("x/a", b"1")
        assert store.backend.create("x/a", b"2") != etag, "a second create overwrote the key"
        assert store.backend.replace("x/a", b"3", etag) == store.backend.get("x/a")[1]
        assert store.backend.get("x/a")[0] == b"3"
        store.backend.create("y/a", b"1")
        with pytest.raises(KeyExists):  # other keys keep their condition
            store.backend.create("y/a", b"2")


@pytest.mark.kinds(*ALL_KINDS)
@pytest.mark.parametrize("op", ["create", "replace"])
def test_a_store_whose_conditions_are_dropped_is_refused(store: Store, tmp_path: Path, op: str) -> None:
    store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1"}))  # proven writable, as it is
    with Faults(store) as faults:
        faults.drop_condition(op)
        condition = store.backend.create_condition if op == "create" else store.backend.swap_condition
        with pytest.raises(ConfigError, match=f"ignores {re.escape(condition)}"):
            store.commit("ds", write_tree(tmp_path / "v2", {"a": b"2"}))
    assert [v.number for v in store.log("ds")] == [1]
    assert not list(store.backend.list(layout.PROBES)), "the probe cleaned up"
    assert not list(store.backend.list(layout.LEASES))


@pytest.mark.kinds(*ALL_KINDS)
def test_reprobe_proves_the_store_again_through_the_wrapper(store: Store, tmp_path: Path) -> None:
    store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1"}))
    with Faults(store, reprobe=True) as faults:
        probes = faults.call("create", layout.PROBES, lambda call: None)
        store.commit("ds", write_tree(tmp_path / "v2", {"a": b"2"}))
    assert len(probes.fired) == 2, "the probe creates its key twice (the second must fail)"
    with Faults(store) as faults:
        probes = faults.call("create", layout.PROBES, lambda call: None)
        store.commit("ds", write_tree(tmp_path / "v3", {"a": b"3"}))
    assert probes.fired == [], "without reprobe a proven store is not probed again"


# ---------------------------------------------------------------------------- call


def test_call_sees_each_call_before_and_after(store: Store) -> None:
    seen: list[Call] = []
    with Faults(store) as faults:
        faults.call("create", "x/", seen.append)
        faults.call("create", "x/", seen.append, when="after")
        store.backend.create("x/a", b"data")
        with pytest.raises(KeyExists):
            store.backend.create("x/a", b"again")
    assert [(c.action, c.op, c.key, c.data, type(c.error)) for c in seen] == [
        ("call", "create", "x/a", b"data", type(None)),
        ("call", "create", "x/a", b"data", type(None)),
        ("call", "create", "x/a", b"again", type(None)),
        ("call", "create", "x/a", b"again", KeyExists),
    ]


@pytest.mark.kinds(*ALL_KINDS)
def test_call_can_interleave_another_worker(store: Store, make_store: Callable[..., Store], tmp_path: Path) -> None:
    """Another worker commits just before this one creates its record: this one takes the next number."""
    other = make_store(kind_of(store))
    other.commit("ds", write_tree(tmp_path / "o1", {"a": b"other 1"}))
    with Faults(store) as faults:
        faults.call(
            "create", VERSIONS, lambda _: other.commit("ds", write_tree(tmp_path / "o2", {"a": b"other 2"})), times=1
        )
        mine = store.commit("ds", write_tree(tmp_path / "mine", {"a": b"mine"}))
    assert mine.number == 3
    assert [v.number for v in store.log("ds")] == [3, 2, 1]


def test_a_function_that_raises_stops_the_operation(store: Store) -> None:
    class Killed(BaseException):
        """Stands for the process dying there."""

    def die(call: Call) -> None:
        raise Killed(call.key)

    with Faults(store) as faults:
        faults.call("delete", "x/", die)
        store.backend.put("x/a", b"1")
        with pytest.raises(Killed):
            store.backend.delete("x/a")
    assert store.backend.exists("x/a")


# ---------------------------------------------------------------------------- object transfers


@pytest.mark.kinds(*ALL_KINDS)
def test_object_transfers_can_be_failed_as_a_whole(
    store: Store, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1"}))
    reader = make_store(kind_of(store))  # its worker cache lacks the object
    with Faults(reader) as faults:
        rule = faults.fail("object_store", error=InjectedFault("the object transfer failed; retry"))
        with pytest.raises(InjectedFault, match="object transfer failed"):
            reader.pull("ds", tmp_path / "out")
    assert rule.fired == [""]
    assert read_tree(reader.pull("ds", tmp_path / "out")) == {"a": b"1"}


# ---------------------------------------------------------------------------- the clock


def test_the_clock_moves_gitfree_time_only_inside_its_block() -> None:
    before = utcnow()
    with Clock() as clock:
        assert timedelta(0) <= utcnow() - before < timedelta(seconds=5)
        clock.advance(hours=2)
        assert timedelta(hours=2) <= utcnow() - before < timedelta(hours=2, seconds=5)
        with Clock(frozen=True) as frozen:
            at = utcnow()
            time.sleep(0.05)
            assert utcnow() == at
            frozen.advance(30)
            assert utcnow() == at + timedelta(seconds=30)
        assert utcnow() - before >= timedelta(hours=2), "the outer clock is back"
    assert utcnow() - before < timedelta(minutes=1)


def test_a_lease_looks_expired_when_the_clock_passes_its_expiry(store: Store) -> None:
    """No waiting and no forged record: a real lease, judged after its TTL and the skew by the clock."""
    holder = leases.Holder.new(store.backend, store.coordinator.ttl, dataset="ds", pointer="0" * 32)
    holder.create()
    try:
        assert not store.coordinator.dead(holder.lease)
        assert store.coordinator.scan()[0] == [holder.lease]
        with Clock() as clock:
            clock.advance(store.coordinator.ttl + store.coordinator.skew + timedelta(seconds=1))
            assert store.coordinator.dead(holder.lease)
            live, dead = store.coordinator.scan()
            assert live == [] and dead == [holder.key]
            assert not holder.valid(margin=timedelta(0)), "its holder knows it lapsed too"
        assert not store.coordinator.dead(holder.lease)
    finally:
        holder.release()
