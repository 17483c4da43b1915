"""The DVC side: hashing data into the worker cache with dvc-data, exactly as ``dvc add`` does.

This is the only module that imports DVC; DVC's types do not leave it.

- :func:`stage` hashes a source path (reusing hashes from a persistent state, keyed by
  path, inode, size and mtime), builds DVC's ``.dir`` listing and adds every object to
  the worker cache (DVC's cache layout, ``files/md5/ab/cdef…``).
- :class:`HashState` is that persistent state, shared by every commit and pull of a
  worker cache, so an unchanged file is never hashed twice.

The objects then travel with :mod:`.transfer` (DVC's push measured 3.5x slower on many small
files; see docs/benchmarks.md), into the same remote layout, so a plain ``dvc pull`` of an
exported ``.dvc`` file reads them.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .errors import IntegrityError
from .models import Output

if TYPE_CHECKING:
    from dvc_data.hashfile.state import State

__all__ = ["HashState", "Staged", "stage"]

logger = logging.getLogger(__name__)


def _quiet_dvc() -> None:
    """A library must not print. ``Repo.init`` logs "Initialized DVC repository." to DVC's console
    handler, and dvc-data draws tqdm bars on a terminal unless its ``callbacks`` logger is above
    ERROR; silence exactly those two loggers (gitfree reports progress through its own callbacks)."""
    logging.getLogger("dvc.repo.init").setLevel(logging.WARNING)
    logging.getLogger("dvc_data.callbacks").setLevel(logging.CRITICAL)


def _info(path: str) -> dict[str, Any] | None:
    """What DVC's local filesystem ``info`` says of a regular file (the fields its state keys on),
    from one ``os.stat``: a tenth of the cost, which counts at 10,000 files."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return {"type": "file", "size": st.st_size, "ino": st.st_ino, "mtime": st.st_mtime, "mode": st.st_mode}


class HashState:
    """Known hashes of local files, keyed by path and checked against inode, size and mtime.

    Shared by every commit and pull of a worker cache, so an unchanged file is never
    hashed twice (DVC's own state is keyed by workspace, and workspaces are temporary).
    """

    def __init__(self, cache_dir: Path) -> None:
        from dvc_data.hashfile.state import State

        self._state: State = State(root_dir=None, tmp_dir=str(cache_dir / "state"))

    @property
    def dvc(self) -> State:
        return self._state

    def known(self, paths: list[str]) -> dict[str, str]:
        """The md5 of each path whose state entry is still valid."""
        from dvc_objects.fs.local import LocalFileSystem

        infos = {path: info for path in paths if (info := _info(path)) is not None}
        return {
            path: hash_info.value
            for path, _meta, hash_info in self._state.get_many(list(infos), LocalFileSystem(), infos)
            if hash_info is not None and hash_info.name == "md5" and hash_info.value
        }

    def remember(self, items: Iterable[tuple[str, str]]) -> None:
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_objects.fs.local import LocalFileSystem

        self._state.save_many(
            ((path, HashInfo("md5", md5), info) for path, md5 in items if (info := _info(path)) is not None),
            LocalFileSystem(),
        )

    def close(self) -> None:
        self._state.close()


@dataclass(frozen=True)
class Staged:
    """Data hashed and present in the worker cache, ready to push."""

    out: Output
    oids: frozenset[str]
    """Every object of the version: the ``.dir`` listing (for a directory) and each file."""


def stage(
    source: Path, out_path: str, cache_dir: Path, state: HashState, callback: Callback = DEFAULT_CALLBACK
) -> Staged:
    """Hash ``source`` (a file or directory) and add its objects to the worker cache at ``cache_dir``."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_data.hashfile.transfer import transfer
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.fs.local import LocalFileSystem

    _quiet_dvc()
    fs = LocalFileSystem()
    cache = HashFileDB(fs, str(cache_dir / "files" / "md5"), state=state.dvc)
    staging, meta, obj = build(cache, str(source), fs, "md5", state=state.dvc, callback=callback)
    transfer(staging, cache, {obj.hash_info}, hardlink=False, shallow=False, verify=False)
    oid = obj.hash_info.value
    if not oid:
        raise IntegrityError(f"DVC computed no hash for {source}")
    if isinstance(obj, Tree):
        oids = {oid, *(hi.value for _, _, hi in obj if hi is not None and hi.value)}
        out = Output(md5=oid, size=meta.size or 0, nfiles=meta.nfiles or 0, path=out_path)
    else:
        oids = {oid}
        out = Output(md5=oid, size=meta.size or 0, path=out_path)
    return Staged(out=out, oids=frozenset(oids))
