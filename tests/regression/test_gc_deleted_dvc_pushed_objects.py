"""Nothing gitfree did not write is deleted (issue: ``gitfree gc`` deleted a DVC project's objects).

The README tells git+DVC users to add the store as their DVC remote. After ``dvc add mine && dvc push``
into it, ``gitfree gc --grace 0s`` deleted DVC's objects and ``dvc pull`` failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.testing import SeaweedFS

DVC = str(Path(sys.executable).with_name("dvc"))


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=300)


def _project(tmp_path: Path, remote: str, seaweedfs: SeaweedFS | None) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    _run("git", "init", "-q", cwd=project)
    _run(DVC, "init", "-q", cwd=project)
    _run(DVC, "remote", "add", "-d", "store", remote, cwd=project)
    if seaweedfs is not None:
        _run(DVC, "remote", "modify", "store", "endpointurl", seaweedfs.endpoint, cwd=project)
        _run(DVC, "remote", "modify", "--local", "store", "access_key_id", seaweedfs.access_key, cwd=project)
        _run(DVC, "remote", "modify", "--local", "store", "secret_access_key", seaweedfs.secret_key, cwd=project)
    return project


def test_gc_keeps_what_a_dvc_project_pushed_to_the_store(store: Store, seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    # gitfree's own history: three versions, the first two will be dropped.
    for i in range(3):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"f": f"gitfree {i}".encode(), "g": os.urandom(100)}))
    remote = store.url if store.url.startswith("s3://") else str(store.backend.root)  # type: ignore[attr-defined]
    project = _project(tmp_path, remote, seaweedfs if store.url.startswith("s3://") else None)
    mine = {"a.txt": b"the project's own data", "sub/b.bin": os.urandom(3000)}
    write_tree(project / "mine", mine)
    _run(DVC, "add", "-q", "mine", cwd=project)
    _run(DVC, "push", "-q", cwd=project)

    report = store.gc(keep_last=1, grace=timedelta(0))
    shutil.rmtree(project / "mine")
    shutil.rmtree(project / ".dvc" / "cache")
    _run(DVC, "pull", "-q", cwd=project)  # failed here: gc had deleted DVC's objects
    assert read_tree(project / "mine") == mine
    assert store.fsck(deep=True).ok

    assert report.versions_deleted == ["ds@1", "ds@2"]
    assert report.objects_deleted == 6  # the listing and two files of each of ds@1 and ds@2
    assert report.foreign_objects == 3 and not report.foreign_deleted  # DVC's listing and two files
    dry = store.gc(grace=timedelta(0), dry_run=True)
    assert dry.foreign_objects == 3 and dry.foreign_bytes > 3000

    # Only when asked: the foreign objects go too.
    assert store.gc(grace=timedelta(0), delete_foreign=True).objects_deleted == 3
    assert store.gc(grace=timedelta(0), dry_run=True).foreign_objects == 0


def test_the_cli_reports_foreign_objects_and_deletes_them_only_when_asked(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gitfree.cli import cli

    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("ds", write_tree(tmp_path / "src", {"f": b"1"}))
    foreign = tmp_path / "store" / "files" / "md5" / "ab" / ("c" * 30)
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"pushed by dvc")
    args = ["--store", str(tmp_path / "store"), "--cache-dir", str(tmp_path / "cache"), "gc", "--grace", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "1 foreign object (13 B) left alone" in result.output
    assert foreign.exists()
    result = CliRunner().invoke(cli, [*args, "--delete-foreign"])
    assert result.exit_code == 0 and "1 foreign object (13 B) deleted" in result.output
    assert not foreign.exists()
