"""Materialise a version at a destination: validate every path first, verify every byte, swap atomically.

DVC 3.67 by itself checks out a ``.dir`` listing whose entry is ``../../x`` and
materialises a corrupted cache object; this module refuses both. Files are
written into a staging directory beside the destination and renamed into place,
so the destination is either what it was or the complete version, never a mix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .errors import InputError, IntegrityError, UnsafePathError
from .layout import object_key
from .localfs import copy_file
from .models import FileEntry
from .staging import HashState

__all__ = ["check_destination", "matches", "materialise", "select", "validate_entries"]

_CHUNK = 1 << 20
_STAGING = ".gitfree-pull-"


def validate_path(path: object) -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a version, else raise."""
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"a version lists an empty or non-text path ({path!r}); refusing to write anything")
    reason = None
    if "\x00" in path:
        reason = "contains a NUL byte"
    elif "\\" in path:
        reason = "contains a backslash"
    elif path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        reason = "is absolute"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        reason = "has an empty, '.' or '..' segment"
    if reason:
        raise UnsafePathError(
            f"a version lists the path {path!r}, which {reason} and could write outside the destination; refusing to write anything"
        )
    return path


def validate_entries(entries: Sequence[FileEntry]) -> None:
    """Refuse unsafe, duplicate or clashing paths (a file that is also a directory)."""
    seen: set[str] = set()
    for entry in entries:
        validate_path(entry.path)
        if entry.path in seen:
            raise UnsafePathError(f"a version lists the path {entry.path!r} twice; refusing to write anything")
        seen.add(entry.path)
    for entry in entries:
        parent = entry.path.rpartition("/")[0]
        while parent:
            if parent in seen:
                raise UnsafePathError(
                    f"a version lists {parent!r} both as a file and as a directory; refusing to write anything"
                )
            parent = parent.rpartition("/")[0]


def select(entries: Sequence[FileEntry], paths: Iterable[str]) -> list[FileEntry]:
    """The entries at or under each of ``paths`` (``labels/`` or ``labels`` for a folder)."""
    wanted = [p.strip("/") for p in paths]
    for p in wanted:
        if p:
            validate_path(p)
    chosen = [e for e in entries if any(not p or e.path == p or e.path.startswith(p + "/") for p in wanted)]
    missing = [p for p in wanted if p and not any(e.path == p or e.path.startswith(p + "/") for e in entries)]
    if missing:
        raise InputError(
            f"the version has no file or folder {missing[0]!r}; list its files with `gitfree show --files REF`"
        )
    return chosen


def _target(dest: Path, entry: FileEntry, single: bool) -> Path:
    return dest if single else dest.joinpath(*entry.path.split("/"))


def matches(dest: Path, entries: Sequence[FileEntry], single: bool, state: HashState) -> bool:
    """Does ``dest`` hold exactly these files with these hashes (and nothing else)?"""
    if single:
        if not dest.is_file() or dest.is_symlink():
            return False
    else:
        if not dest.is_dir() or dest.is_symlink():
            return False
        present: set[str] = set()
        for dirpath, _, filenames in os.walk(dest):
            rel = Path(dirpath).relative_to(dest).as_posix()
            present.update(name if rel == "." else f"{rel}/{name}" for name in filenames)
        if present != {e.path for e in entries}:
            return False
    paths = {str(_target(dest, e, single)): e.md5 for e in entries}
    known = state.known(list(paths))
    for path, md5 in paths.items():
        if known.get(path) == md5:
            continue
        if os.path.islink(path) or _md5_file(path) != md5:
            return False
        state.remember([(path, md5)])
    return True


def check_destination(dest: Path, overwrite: bool) -> None:
    """Refuse a destination that holds other data, unless told to overwrite it."""
    if dest.is_symlink():
        raise InputError(f"the destination {dest} is a symbolic link; give the real path")
    if not dest.exists() or overwrite:
        return
    if dest.is_dir() and not any(dest.iterdir()):
        return
    raise InputError(
        f"the destination {dest} exists and holds other data; pass overwrite=True (--overwrite) to replace it, or choose another path"
    )


def _md5_file(path: str | Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_verified(src: Path, dst: Path, md5: str) -> None:
    h = hashlib.md5(usedforsecurity=False)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            fout.write(chunk)
    if h.hexdigest() != md5:
        # The worker cache holds a corrupted copy: drop it so the next pull fetches a good one.
        with contextlib.suppress(OSError):
            src.unlink()
        raise IntegrityError(
            f"the cached object {md5} does not match its hash (disk corruption?); it was removed from the worker cache, pull again"
        )


def materialise(
    entries: Sequence[FileEntry],
    cache_dir: Path,
    dest: Path,
    *,
    single: bool,
    state: HashState,
    jobs: int = 8,
    callback: Callback = DEFAULT_CALLBACK,
) -> Path:
    """Write ``entries`` from the worker cache to ``dest``, replacing what is there.

    A cache object is hashed as it is copied unless the hash state proves it intact (verified
    before and not changed since: same inode, size and mtime); then the kernel copies it.
    """
    validate_entries(entries)
    objects = {f"{cache_dir}/{object_key(md5)}": md5 for md5 in {e.md5 for e in entries}}
    trusted = {md5 for path, md5 in state.known(list(objects)).items() if objects[path] == md5}
    verified: list[tuple[str, str]] = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f"{_STAGING}{uuid.uuid4().hex}"
    callback.set_size(len(entries))
    try:
        if not single:
            staging.mkdir()
            for parent in sorted({e.path.rpartition("/")[0] for e in entries}):
                if parent:
                    os.makedirs(f"{staging}/{parent}", exist_ok=True)

        def verify_copy(entry: FileEntry) -> None:
            source = cache_dir / object_key(entry.md5)
            _copy_verified(source, _target(staging, entry, single), entry.md5)
            verified.append((str(source), entry.md5))
            callback.relative_update(1)

        # Intact objects: the kernel copies, fastest one after another (measured: threads only
        # add contention), with plain string paths (pathlib costs more than the copy of a small
        # file). Others are hashed on the way, in parallel.
        cache_root, staging_root = str(cache_dir), str(staging)
        for entry in entries:
            if entry.md5 in trusted:
                target = staging_root if single else f"{staging_root}/{entry.path}"
                copy_file(f"{cache_root}/{object_key(entry.md5)}", target)
                callback.relative_update(1)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for _ in pool.map(verify_copy, [e for e in entries if e.md5 not in trusted]):
                pass
        if dest.exists() or dest.is_symlink():
            old = dest.parent / f"{_STAGING}old-{uuid.uuid4().hex}"
            os.rename(dest, old)
            os.rename(staging, dest)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        else:
            os.rename(staging, dest)
    except BaseException:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                staging.unlink()
        raise
    root = str(dest)
    state.remember([*verified, *((root if single else f"{root}/{e.path}", e.md5) for e in entries)])
    return dest
