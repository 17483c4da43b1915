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

import contextlib
import logging
import os
import stat
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .errors import InputError, IntegrityError
from .layout import object_key
from .localfs import copy_file
from .models import Output

if TYPE_CHECKING:
    from dvc_data.hashfile.state import State

__all__ = ["HashState", "Staged", "stage"]

_COPY_THREADS = 4

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
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.fs.local import LocalFileSystem

    _quiet_dvc()
    fs = LocalFileSystem()
    cache = HashFileDB(fs, str(cache_dir / "files" / "md5"), state=state.dvc)
    _, meta, obj = build(cache, str(source), fs, "md5", state=state.dvc, callback=callback)
    oid = obj.hash_info.value
    if not oid:
        raise IntegrityError(f"DVC computed no hash for {source}")
    if isinstance(obj, Tree):
        files = {os.path.join(source, *key): hi.value for key, _, hi in obj if hi is not None and hi.value}
        _into_cache(files, cache_dir, state)
        _write_object(cache_dir, oid, obj.as_bytes())
        out = Output(md5=oid, size=meta.size or 0, nfiles=meta.nfiles or 0, path=out_path)
        oids = {oid, *files.values()}
    else:
        _into_cache({str(source): oid}, cache_dir, state)
        out = Output(md5=oid, size=meta.size or 0, path=out_path)
        oids = {oid}
    return Staged(out=out, oids=frozenset(oids))


def _into_cache(files: dict[str, str], cache_dir: Path, state: HashState) -> None:
    """Copy each source file (path -> md5, as just hashed) the worker cache lacks into it.

    One kernel copy per file (dvc-data's own transfer first tries a reflink, which creates and
    removes the target once more: twice the file creations, measured 3x slower on 10,000 files).
    A source that changed after it was hashed is caught by the hash state (its inode, size or
    mtime differ) and refused, so no object is ever stored under another content's hash.
    """
    root = str(cache_dir)
    token = uuid.uuid4().hex[:12]
    wanted = {src: md5 for src, md5 in files.items() if not os.path.isfile(f"{root}/{object_key(md5)}")}
    for prefix in {object_key(md5).rpartition("/")[0] for md5 in wanted.values()}:
        os.makedirs(f"{root}/{prefix}", exist_ok=True)
    staged: dict[str, tuple[str, str]] = {}
    copies: list[tuple[str, str]] = []
    for src, md5 in wanted.items():
        target = f"{root}/{object_key(md5)}"
        if target not in staged:  # two files with the same content are copied once
            staged[target] = (f"{target}.{token}.tmp", md5)
            copies.append((src, staged[target][0]))
    try:
        # File creation is most of the cost on many small files; the kernel overlaps a few.
        with ThreadPoolExecutor(max_workers=_COPY_THREADS) as pool:
            for _ in pool.map(lambda pair: copy_file(*pair), copies):
                pass
        still = state.known(list(wanted))
        changed = sorted(src for src, md5 in wanted.items() if still.get(src) != md5)
        if changed:
            raise InputError(
                f"{changed[0]} changed while it was being committed ({len(changed)} file(s) did); "
                "nothing was committed: commit again once the data is complete"
            )
    except BaseException:
        for tmp, _ in staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    for target, (tmp, _) in staged.items():
        os.replace(tmp, target)
    state.remember((target, md5) for target, (_, md5) in staged.items())


def _write_object(cache_dir: Path, md5: str, data: bytes) -> None:
    """Store ``data`` (whose md5 is ``md5``, less a ``.dir`` suffix) in the worker cache."""
    target = cache_dir / object_key(md5)
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
