"""Temporary files of killed writers (issue 18): a read by reference or a download killed with SIGKILL
mid-transfer leaves its temporary file in the worker cache, a killed commit to a folder store leaves one in
the store; the next download sweeps the cache's, GC the store's, and neither touches one a live process is
still writing (docs/design.md, "Temporary files"). The writers are real second processes, stalled
mid-write by a fault injected in them, then killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.versioning import layout
from gitfree.versioning.localfs import LEFTOVER_AGE, owned_name, sweep_leftovers

_STALLED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gitfree import Store
    from gitfree.versioning import backends, sources, transfer

    mode, url, cache, ref, dest = sys.argv[1:]

    def stall(out, data):
        out.write(data[: max(1, len(data) // 2)])
        out.flush()
        print("writing", flush=True)
        time.sleep(600)

    if mode == "ref":  # a read by reference stalls mid-file
        sources.FileSource.read_into = lambda self, entry, out: stall(out, b"x" * entry.size)
    elif mode == "get":  # a download of an uploaded object stalls mid-object
        async def streamed(result, size, tmp, digest, progress):
            data = await result.bytes_async()
            with open(tmp, "wb") as f:
                stall(f, data)
        transfer._streamed = streamed
    else:  # a record write to a folder store stalls once its temporary file is written
        written = backends.FileBackend._write_tmp
        def write_tmp(self, path, data):
            tmp = written(self, path, data)
            if "/versions/" in str(path):
                print("writing", flush=True)
                time.sleep(600)
            return tmp
        backends.FileBackend._write_tmp = write_tmp
        Store(url, cache_dir=Path(cache)).commit(ref, dest)
    Store(url, cache_dir=Path(cache)).pull(ref, dest)
    """
)


def _stalled(*args: str | Path) -> subprocess.Popen[str]:
    """A second process running gitfree until it stalls mid-write (it says "writing" then)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _STALLED, *map(str, args)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the write is under way (or the process ended)
    assert line == "writing\n", f"the writer did not start writing (exit {proc.poll()})"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _temporaries(cache: Path) -> list[Path]:
    return sorted((cache / layout.CACHE_TMP).iterdir())


@pytest.mark.parametrize("mode", ["ref", "get"])
def test_a_killed_transfer_leaves_a_temporary_file_the_next_download_removes_and_a_live_ones_stays(
    tmp_path: Path, mode: str
) -> None:
    files = {"a.bin": os.urandom(3 << 20)}  # one file: one writer thread, one temporary file
    source = write_tree(tmp_path / "source", files)
    url = (tmp_path / "store").as_uri()
    version = Store(url, cache_dir=tmp_path / "committer").commit("ds", source, by_reference=mode == "ref")
    cache = tmp_path / "worker"
    killed = _stalled(mode, url, cache, version.ref, tmp_path / "dest-killed")
    _kill(killed)
    left = _temporaries(cache)
    assert len(left) == 1 and left[0].stat().st_size > 0  # what issue 18 saw: the bytes so far, left behind
    live = _stalled(mode, url, cache, version.ref, tmp_path / "dest-live")
    try:
        writing = [p for p in _temporaries(cache) if p not in left]
        assert len(writing) == 1
        pulled = Store(url, cache_dir=cache).pull(version.ref, tmp_path / "dest")
        assert read_tree(pulled) == files
        assert _temporaries(cache) == writing  # the killed one's gone, the live one's kept
    finally:
        _kill(live)


def test_a_killed_commit_to_a_folder_store_leaves_a_temporary_record_gc_removes(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "source", {"a.csv": b"x\n1\n"})
    root = tmp_path / "store"
    store = Store(root.as_uri(), cache_dir=tmp_path / "cache")
    store.commit("ds", source)
    write_tree(source, {"a.csv": b"x\n2\n"})
    killed = _stalled("commit", root.as_uri(), tmp_path / "c1", "ds", source)
    _kill(killed)
    versions = root / layout.versions_prefix("ds")
    left = [p for p in versions.iterdir() if p.name.startswith(".gitfree-tmp-")]
    assert len(left) == 1
    # obstore's staging file of an object upload killed long ago, and one being written now
    stale = root / "files/md5/ab" / f"{'c' * 30}#1"
    fresh = root / "files/md5/ab" / f"{'d' * 30}#2"
    write_tree(root, {str(stale.relative_to(root)): b"partial", str(fresh.relative_to(root)): b"partial"})
    os.utime(stale, (time.time() - LEFTOVER_AGE - 60,) * 2)
    live = _stalled("commit", root.as_uri(), tmp_path / "c2", "ds", source)
    try:
        writing = [p for p in versions.iterdir() if p.name.startswith(".gitfree-tmp-") and p not in left]
        assert len(writing) == 1
        report = store.fsck()
        assert report.ok, report
        gc = store.gc()
        assert gc.foreign_objects == 0
        assert [p for p in versions.iterdir() if p.name.startswith(".gitfree-tmp-")] == writing
        assert not stale.exists() and fresh.exists()
        assert [v.number for v in store.log("ds")] == [1]
    finally:
        _kill(live)


def test_a_temporary_file_of_another_host_goes_only_when_idle_a_day(tmp_path: Path) -> None:
    mine = tmp_path / owned_name("m")
    other = tmp_path / "o.gfo-00000000-1-1-abcdef12.tmp"  # of another host (its hash); pid 1 is alive here
    unstamped = tmp_path / "x.tmp"
    for path in (mine, other, unstamped):
        path.write_bytes(b"1")
    assert sweep_leftovers([mine, other, unstamped]) == []  # mine: this process is alive
    old = time.time() - LEFTOVER_AGE - 1
    for path in (other, unstamped):
        os.utime(path, (old, old))
    assert sorted(sweep_leftovers([mine, other, unstamped])) == sorted([other, unstamped])


def test_a_pid_reused_by_a_later_process_or_gone_does_not_keep_a_temporary_file(tmp_path: Path) -> None:
    stamp = owned_name("s")  # this process: host, pid, start time
    host, pid, start = stamp.split(".gfo-")[1].split("-")[:3]
    reused = tmp_path / f"r.gfo-{host}-{pid}-{int(start) + 1}-abcdef12.tmp"  # same pid, started at another time
    gone = tmp_path / f"g.gfo-{host}-{2**22 + 7}-1-abcdef12.tmp"  # above Linux's largest pid: no such process
    live = tmp_path / stamp
    for path in (reused, gone, live):
        path.write_bytes(b"1")
    assert sorted(sweep_leftovers([reused, gone, live])) == sorted([reused, gone])
    assert live.exists()
