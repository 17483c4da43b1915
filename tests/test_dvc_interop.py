"""A version exported as a .dvc file is pulled by plain git + DVC from the same remote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.testing import SeaweedFS

DVC = str(Path(sys.executable).with_name("dvc"))


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, env={**os.environ, **(env or {})}, timeout=300)


def test_exported_dvc_file_pulls_with_git_and_dvc(s3_store: Store, seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    files = {"a.txt": b"alpha", "nested/b.bin": os.urandom(5000), "empty": b""}
    src = write_tree(tmp_path / "src", files)
    s3_store.commit("images", src)
    write_tree(src, {"a.txt": b"alpha v2"})
    s3_store.commit("images", src)

    project = tmp_path / "project"
    project.mkdir()
    _run("git", "init", "-q", cwd=project)
    _run(DVC, "init", "-q", cwd=project)
    _run(DVC, "remote", "add", "-d", "store", s3_store.url, cwd=project)
    _run(DVC, "remote", "modify", "store", "endpointurl", seaweedfs.endpoint, cwd=project)
    _run(DVC, "remote", "modify", "--local", "store", "access_key_id", seaweedfs.access_key, cwd=project)
    _run(DVC, "remote", "modify", "--local", "store", "secret_access_key", seaweedfs.secret_key, cwd=project)

    dvc_file = s3_store.export_dvc("images@1", project / "images.dvc")
    assert dvc_file == project / "images.dvc"
    _run(DVC, "pull", "-q", cwd=project)
    assert read_tree(project / "images") == files

    shutil.rmtree(project / "images")
    (project / "images.dvc").unlink()
    assert s3_store.export_dvc("images@2", project) == project / "src.dvc"  # a directory: named after the data
    _run(DVC, "pull", "-q", cwd=project)
    assert read_tree(project / "src") == {**files, "a.txt": b"alpha v2"}


def test_exported_file_version_pulls_with_dvc(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights" * 100)
    store.commit("model", model)
    project = tmp_path / "project"
    project.mkdir()
    _run("git", "init", "-q", cwd=project)
    _run(DVC, "init", "-q", cwd=project)
    _run(DVC, "remote", "add", "-d", "store", str(tmp_path / "store"), cwd=project)
    store.export_dvc("model", project / "weights.pt.dvc")
    _run(DVC, "pull", "-q", cwd=project)
    assert (project / "weights.pt").read_bytes() == model.read_bytes()


def test_a_materialized_version_by_reference_pulls_with_dvc(tmp_path: Path) -> None:
    """After `materialize`, a version by reference is exported as a plain .dvc that `dvc pull` takes from the
    store alone (the source is gone by then)."""
    files = {"a.csv": b"x,y\n1,2\n", "d/b.txt": b"hello b"}
    source = write_tree(tmp_path / "shared" / "images", files)
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.commit("images", source, by_reference=True)
    store.materialize("images@1")
    shutil.rmtree(source)
    project = tmp_path / "project"
    project.mkdir()
    _run("git", "init", "-q", cwd=project)
    _run(DVC, "init", "-q", cwd=project)
    _run(DVC, "remote", "add", "-d", "store", str(tmp_path / "store"), cwd=project)
    assert store.export_dvc("images@1", project) == project / "images.dvc"
    _run(DVC, "pull", "-q", cwd=project)
    assert read_tree(project / "images") == files
