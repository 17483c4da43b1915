"""Materialise a version at a destination: validate every path first, verify every byte, swap atomically.

DVC 3.67 by itself checks out a ``.dir`` listing whose entry is ``../../x`` and
materialises a corrupted cache object; this module refuses both.

- **What a pull may replace** (:func:`guard_destination`): never the store, the worker cache, the
  current directory or one of its parents, the home directory or ``/`` (compared as resolved paths
  and as device and inode, so symbolic links, ``..`` and bind mounts change nothing), never a path
  below a file, a device or a mount point.
- **A fresh pull, or an overwrite** (:func:`materialise`): the files are written into a staging
  folder beside the destination and renamed into place, so the destination is either what it was
  or the complete version, never a mix (a single file is replaced with one atomic rename).
- **An update** of a destination that holds, unmodified, what gitfree pulled there
  (:func:`pull_into`): only the files that differ are written (staged beside, then each renamed
  over its path: at every path the old file or the new one, never a partial one); the others are
  left alone. What gitfree pulled where is recorded in the worker cache (``pulls/``), never in the
  destination; "unmodified" is proven by the hash state (inode, size, mtime) or by hashing.
- **Leftovers**: each pull claims its staging names with an exclusive lock (``flock``) on
  ``.gitfree-pull-<token>.lock``; a pull removes the staging a dead one left beside its
  destination (its lock is free), and puts back a destination it had moved aside.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TypeGuard

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .errors import InputError, IntegrityError
from .layout import object_key
from .localfs import atomic_write, copy_file, md5_file
from .models import FileEntry, Version
from .staging import HashState
from .tree import validate_entries

__all__ = [
    "destination",
    "dvc_file_text",
    "guard_destination",
    "guard_source",
    "matches",
    "materialise",
    "path_relation",
    "pull_into",
    "sweep",
    "write_dvc_file",
]

_CHUNK = 1 << 20
_STAGING = ".gitfree-pull-"
_LOCK, _NEW, _OLD = ".lock", ".new", ".old"
_TOKEN = re.compile(r"[0-9a-f]{32}")
_LEGACY = re.compile(r"\.gitfree-pull-[0-9a-f]{32}")
"""The staging folder of gitfree before its pulls held locks: removed once a day old."""
_LEGACY_AGE = _FOREIGN_AGE = 24 * 3600.0
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
"""``flock`` refuses: the file system has no locks (then no sweep can prove a pull dead either)."""
_SHOWN_CHANGES = 3
_KEEP_RECORDS = 64
"""Records of what was pulled where kept before those of vanished destinations are dropped."""


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
        if os.path.islink(path) or md5_file(path) != md5:
            return False
        state.remember([(path, md5)])
    return True


def destination(dest: str | os.PathLike[str], single_name: str | None = None) -> Path:
    """The absolute path a pull writes to: ``~`` expanded, ``..`` resolved as the kernel resolves it
    (the last name is kept as given, so a symbolic link there is still seen as one) and, for a
    single-file version (``single_name``) given an existing folder, the file's name inside it."""
    try:
        target = Path(dest).expanduser().absolute()
    except FileNotFoundError:  # a relative path, and the working directory was removed
        raise InputError(
            f"cannot pull to {os.fspath(dest)!r}: the current directory no longer exists; give an absolute path"
        ) from None
    if ".." in target.parts:
        if target.name == "..":
            target = Path(os.path.realpath(target))
        else:
            target = Path(os.path.realpath(target.parent)) / target.name
    folder = os.fspath(dest).endswith(("/", os.sep))  # `out/`: a folder, even one that does not exist yet
    if single_name is not None and (folder or (target.is_dir() and not target.is_symlink())):
        target = target / single_name
    return target


def _file_id(path: Path | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def path_relation(dest: Path, place: Path, inside_too: bool) -> str | None:
    """How ``dest`` relates to ``place``: it ``is`` it, ``contains`` it or ``lies inside`` it (else None).

    Compared as resolved paths (symbolic links, ``..``) and as device and inode (bind mounts)."""
    real, where = Path(os.path.realpath(dest)), Path(os.path.realpath(place))
    own, at = _file_id(real), _file_id(where)
    if real == where or (own is not None and own == at):
        return "is"
    if where.is_relative_to(real) or (own is not None and own in {_file_id(p) for p in where.parents}):
        return "contains"
    if inside_too and (real.is_relative_to(where) or (at is not None and at in {_file_id(p) for p in real.parents})):
        return "lies inside"
    return None


def guard_source(source: Path, *, store_root: Path | None, cache_dir: Path) -> None:
    """Refuse to commit the store, the worker cache, or a folder holding or inside either: the commit would
    snapshot what gitfree writes into at that moment. The same comparison as :func:`guard_destination`
    (resolved paths, and device and inode)."""
    places = _gitfree_places(store_root, cache_dir)
    for what, place in places:
        if path_relation(source, place, inside_too=True) is not None:
            raise InputError(
                f"cannot commit {source}: it is, holds or lies inside {what} ({place.resolve()}); gitfree writes "
                "there while it commits. Commit your data from a folder of its own"
            )


def _gitfree_places(store_root: Path | None, cache_dir: Path) -> list[tuple[str, Path]]:
    """Where gitfree itself writes, which no commit may read from and no export write into."""
    return [("the worker cache", cache_dir)] + ([("the store", store_root)] if store_root is not None else [])


def write_dvc_file(version: Version, store_url: str, path: Path, *, store_root: Path | None, cache_dir: Path) -> Path:
    """Write the ``.dvc`` file of ``version`` at ``path`` (``NAME.dvc``, or a directory to put it in): DVC's
    own pointer (md5, size, nfiles, path), which ``dvc pull`` resolves against a remote that is the store."""
    target = path / f"{version.pointer.out.path}.dvc" if path.is_dir() else path
    if target.suffix != ".dvc" or target.name == ".dvc":
        raise InputError(f"export to a file named NAME.dvc (got {target.name!r}); DVC tracks NAME next to it")
    guard_export(target, store_root=store_root, cache_dir=cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = dvc_file_text(version, store_url, target.name[: -len(".dvc")])
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)  # a reader sees the old pointer or the new one, never half of one
    finally:
        temporary.unlink(missing_ok=True)
    return target


def guard_export(target: Path, *, store_root: Path | None, cache_dir: Path) -> None:
    """Refuse a ``.dvc`` target below a file, that is not a regular file, that is a symbolic link (writing
    through it would change the file it points to), or inside the store or the worker cache (a key outside
    the store's layout). An existing regular file is replaced: that is how a project's pointer moves on."""
    mode = _writable_kind(target, doing="export to")
    if mode is not None and not stat.S_ISREG(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "a folder"
        raise InputError(
            f"cannot export to {target}: it is {what}, and export writes a regular NAME.dvc file; remove it or "
            "choose another path"
        )
    places = _gitfree_places(store_root, cache_dir)
    for what, place in places:
        if path_relation(target, place, inside_too=True) is not None:
            raise InputError(
                f"cannot export to {target}: it lies inside {what} ({place}), which holds only what gitfree "
                "writes; export into your DVC project instead"
            )


def dvc_file_text(version: Version, store_url: str, name: str) -> str:
    """The ``.dvc`` file of ``version`` whose data is named ``name`` (``images`` for ``images.dvc``)."""
    out = version.pointer.out
    lines = [
        f"# gitfree: {version.ref} from {store_url} (version id {version.id})",
        "outs:",
        f"- md5: {out.md5}",
        f"  size: {out.size}",
        *([f"  nfiles: {out.nfiles}"] if out.nfiles is not None else []),
        "  hash: md5",
        f"  path: {json.dumps(name)}",
        "",
    ]
    return "\n".join(lines)


def guard_destination(dest: Path, *, store_root: Path | None, cache_dir: Path, hint: str = "data") -> None:
    """Refuse, even with ``overwrite``, a destination whose replacement would destroy what must not go.

    That is: the store (for a local store, ``store_root``) or the worker cache, or a path inside
    or around either; the current directory or one of its parents, the home directory, ``/``; a
    path below a file; a device, FIFO or socket; a mount point (it cannot be renamed). ``hint``
    names a new folder to suggest (the dataset's last name).

    Raises:
        InputError: naming the path, why, and what to do instead.
    """
    mode = _writable_kind(dest)
    real = os.path.realpath(dest)
    shown = dest if str(dest) == real else f"{dest} (that is, {real})"
    for what, place, inside_too in _protected(store_root, cache_dir):
        relation = path_relation(dest, place, inside_too)
        if relation is None:
            continue
        if relation != "contains" and inside_too:
            instead = f"pull into a folder outside {place}"
        else:
            instead = f"pull into a new folder of its own instead, e.g. {dest / hint}"
        raise InputError(
            f"refusing to pull to {shown}: it {relation} {what} ({place}), which a pull there would "
            f"replace or corrupt, with or without overwrite=True; {instead}",
            options=(("overwrite=True", "--overwrite"),),
        )
    if mode is not None and stat.S_ISDIR(mode) and os.path.ismount(dest):
        raise InputError(
            f"cannot pull to {dest}: it is a mount point, and a pull builds the version beside its destination "
            f"and renames it into place; pull into a folder inside it, e.g. {dest / hint}"
        )


def _writable_kind(dest: Path, doing: str = "pull to") -> int | None:
    """The file mode of ``dest`` (``None`` if it does not exist), refusing a destination below a file or
    one that is a device, FIFO or socket."""
    for parent in dest.parents:
        if os.path.lexists(parent):
            if not os.path.isdir(parent):
                what = "a symbolic link to nothing" if os.path.islink(parent) else "a file, not a folder"
                raise InputError(
                    f"cannot {doing} {dest}: {parent} is {what}, so nothing can be written below it; "
                    "choose a destination in a folder"
                )
            break
    try:
        mode = os.lstat(dest).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot {doing} {dest}: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        raise InputError(
            f"cannot {doing} {dest}: it is a device, FIFO or socket, not a file or a folder; choose another path"
        )
    return mode


def _protected(store_root: Path | None, cache_dir: Path) -> list[tuple[str, Path, bool]]:
    """What a pull must never replace: ``(what, where, also a path inside it)``."""
    places: list[tuple[str, Path, bool]] = [("the root directory", Path("/"), False)]
    if store_root is not None:
        places.append(("the store", store_root, True))
    places.append(("the worker cache", cache_dir, True))
    with contextlib.suppress(RuntimeError, KeyError):
        home = Path.home()
        if home.is_absolute():
            places.append(("your home directory", home, False))
    with contextlib.suppress(OSError):
        places.append(("the current directory", Path.cwd(), False))
    return places


# ---------------------------------------------------------------------------- staging names and leftovers


def _remove(path: Path | str) -> None:
    """Remove a file or a folder tree (not following a symbolic link), as far as permissions allow;
    nothing there is fine (callers check what is left)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _same_file(fd: int, path: Path) -> bool:
    """Is ``path`` still the file open as ``fd`` (a sweep may have removed the name)?"""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _settle(parent: Path, token: str, dest_name: object) -> bool:
    """Finish what the pull that held ``token`` left beside its destination; True when nothing is left.

    A destination it had moved aside (``.old``) is put back if nothing took its place (the pull died
    between its two renames), else removed (the new version is in place); its staging is removed.
    """
    new, old = parent / f"{_STAGING}{token}{_NEW}", parent / f"{_STAGING}{token}{_OLD}"
    if os.path.lexists(old):
        home = (
            parent / dest_name
            if isinstance(dest_name, str) and dest_name not in ("", ".", "..") and not set(dest_name) & {"/", "\x00"}
            else None
        )
        if home is None:
            return False  # whose it was is unknown: keep it
        if os.path.lexists(home):
            _remove(old)
        else:
            with contextlib.suppress(OSError):
                os.rename(old, home)
    _remove(new)
    return not (os.path.lexists(new) or os.path.lexists(old))


class _Slot:
    """The names one pull stages under beside ``dest``: ``.gitfree-pull-<token>.new`` (the new data)
    and ``.old`` (the destination moved aside), claimed by an exclusive ``flock`` on
    ``.gitfree-pull-<token>.lock`` for as long as the pull's process lives (the kernel releases
    it when the process dies, however it dies). The lock file names the destination, the process
    and the host."""

    def __init__(self, dest: Path) -> None:
        parent = dest.parent
        while True:
            token = uuid.uuid4().hex
            lock = parent / f"{_STAGING}{token}{_LOCK}"
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                if not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
                    raise
                raise InputError(
                    f"cannot pull to {dest}: {parent} is not writable ({exc.strerror}); choose a destination you "
                    "can write to"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
            if _same_file(fd, lock):
                break
            os.close(fd)  # a sweep took the name between its creation and the lock: take another
        claim = {"dest": dest.name, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.write(fd, json.dumps(claim).encode())
        self._fd, self._token, self._dest = fd, token, dest
        self.lock = lock
        self.new = parent / f"{_STAGING}{token}{_NEW}"
        self.old = parent / f"{_STAGING}{token}{_OLD}"

    def __enter__(self) -> _Slot:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if _settle(self._dest.parent, self._token, self._dest.name):
                with contextlib.suppress(OSError):
                    os.unlink(self.lock)
        finally:
            os.close(self._fd)


def _reap(parent: Path, token: str) -> None:
    """Settle what the pull of ``token`` left, if it is provably dead: its lock is free."""
    lock = parent / f"{_STAGING}{token}{_LOCK}"
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # held: that pull is running (or the file system has no locks: nothing is provable)
        if not _same_file(fd, lock):
            return
        try:
            claim = json.loads(os.read(fd, 1 << 16) or b"{}")
        except (OSError, ValueError):
            claim = {}
        if not isinstance(claim, dict):
            claim = {}
        if claim.get("host", socket.gethostname()) != socket.gethostname():
            # Another machine (or container) over a shared file system: its lock may not reach here
            # (some network file systems keep locks local), so only a day-old claim is taken as dead.
            with contextlib.suppress(OSError):
                if time.time() - os.fstat(fd).st_mtime < _FOREIGN_AGE:
                    return
        if _settle(parent, token, claim.get("dest")):
            with contextlib.suppress(OSError):
                os.unlink(lock)
    finally:
        os.close(fd)


def sweep(parent: Path) -> None:
    """Remove what pulls that died (killed, crashed, the machine stopped) left in ``parent``.

    Only provably dead leftovers go: a pull's lock is released by the kernel when its process
    ends, so a staging folder whose lock can be taken belongs to no running pull. Staging folders
    of gitfree versions without locks go once a day old.
    """
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(_STAGING):
            continue
        token = name[len(_STAGING) : -len(_LOCK)]
        if name.endswith(_LOCK) and _TOKEN.fullmatch(token):
            _reap(parent, token)
        elif _LEGACY.fullmatch(name):
            with contextlib.suppress(OSError):
                if time.time() - os.lstat(parent / name).st_mtime > _LEGACY_AGE:
                    _remove(parent / name)


def _make_parent(dest: Path) -> None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (PermissionError, FileExistsError, NotADirectoryError) as exc:
        raise InputError(
            f"cannot pull to {dest}: cannot create {exc.filename or dest.parent} ({exc.strerror}); "
            "choose a destination you can write to"
        ) from None


# ---------------------------------------------------------------------------- what gitfree pulled where


def _md5_map(value: object) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 32 for k, v in value.items()
    )


class _Pulled:
    """What gitfree last wrote at one destination (each path and its md5), kept in the worker cache
    under ``pulls/`` (keyed by the resolved destination path), never in the destination.

    While an update moves files, the record also holds the files before it (``previous``), so a
    destination left half updated by a crash is still recognised.
    """

    def __init__(self, cache_dir: Path, dest: Path) -> None:
        self.dest = os.path.realpath(dest)
        key = hashlib.sha256(os.fsencode(self.dest)).hexdigest()[:32]
        self.path = cache_dir / "pulls" / f"{key}.json"

    def read(self, single: bool) -> tuple[str, dict[str, str], dict[str, str] | None] | None:
        """``(ref, files, previous)`` as recorded, if gitfree pulled a version of this kind here."""
        try:
            record = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("dest") != self.dest or record.get("single") is not single:
            return None
        files, previous = record.get("files"), record.get("previous")
        if not _md5_map(files) or (previous is not None and not _md5_map(previous)):
            return None
        return str(record.get("ref", "")), files, previous

    def write(self, ref: str, single: bool, files: dict[str, str], previous: dict[str, str] | None = None) -> None:
        record: dict[str, object] = {"dest": self.dest, "ref": ref, "single": single, "files": files}
        if previous is not None:
            record["previous"] = previous
        atomic_write(self.path, json.dumps(record, separators=(",", ":")).encode())
        self._prune()

    def _prune(self) -> None:
        """Forget destinations that no longer exist, once there are many records (they hold every path)."""
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return
        if len(names) <= _KEEP_RECORDS:
            return
        for name in names:
            path = self.path.parent / name
            if path == self.path:
                continue
            with contextlib.suppress(OSError, ValueError):
                if name.endswith(".tmp"):
                    if time.time() - os.lstat(path).st_mtime > _LEGACY_AGE:
                        os.unlink(path)
                    continue
                with open(path, "rb") as f:
                    head = f.read(1 << 16).decode("ascii", "replace")
                prefix = '{"dest":'
                if head.startswith(prefix):
                    dest, _ = json.JSONDecoder().raw_decode(head, len(prefix))
                    if isinstance(dest, str) and not os.path.lexists(dest):
                        os.unlink(path)


def _walk(dest: Path) -> tuple[dict[str, str], set[str], list[str]]:
    """Under ``dest``: regular files (relative path -> path), folders, and anything else."""
    files: dict[str, str] = {}
    dirs: set[str] = set()
    odd: list[str] = []
    stack = [("", str(dest))]
    while stack:
        rel, full = stack.pop()
        with os.scandir(full) as entries:
            for entry in entries:
                path = f"{rel}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    dirs.add(path)
                    stack.append((f"{path}/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    files[path] = entry.path
                else:
                    odd.append(path)
    return files, dirs, odd


def _ancestors(paths: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in out:
            out.add(parent)
            parent = parent.rpartition("/")[0]
    return out


def _unmodified(
    dest: Path, single: bool, files: dict[str, str], previous: dict[str, str] | None, state: HashState
) -> tuple[dict[str, str], list[str]]:
    """The md5 of each file at ``dest`` that gitfree wrote there, and the changes made since (if any).

    ``files`` is what gitfree recorded; with ``previous`` (an update was moving files), each path may
    hold either one, or nothing.
    """
    allowed: dict[str, set[str]] = {}
    for recorded in (files, previous or {}):
        for path, md5 in recorded.items():
            allowed.setdefault(path, set()).add(md5)
    changes: list[str] = []
    if single:
        if not dest.is_file() or dest.is_symlink():
            return {}, [f"{dest} is no longer the file gitfree wrote"]
        present: dict[str, str] = {"": str(dest)}
        dirs: set[str] = set()
        odd: list[str] = []
    else:
        if not dest.is_dir() or dest.is_symlink():
            return {}, [f"{dest} is no longer the folder gitfree wrote"]
        present, dirs, odd = _walk(dest)
    changes += [f"{p} (not a regular file)" for p in sorted(odd)]
    changes += [f"{p} added" for p in sorted(present) if p not in allowed]
    if previous is None:
        changes += [f"{p} removed" for p in sorted(files) if p not in present]
    needed = _ancestors(allowed)
    changes += [f"{d}/ added" for d in sorted(dirs) if d not in needed]
    if changes:
        return {}, changes
    known = state.known(list(present.values()))
    current: dict[str, str] = {}
    hashed: list[tuple[str, str]] = []
    for rel, path in sorted(present.items()):
        md5 = known.get(path) or ""
        if not md5:
            md5 = md5_file(path)
            hashed.append((path, md5))
        if md5 in allowed[rel]:
            current[rel] = md5
        else:
            changes.append(f"{rel or dest.name} modified")
    state.remember(hashed)
    return current, changes


def _describe(ref: str, changes: list[str]) -> str:
    shown = ", ".join(changes[:_SHOWN_CHANGES])
    more = f" and {len(changes) - _SHOWN_CHANGES} more" if len(changes) > _SHOWN_CHANGES else ""
    return f" (changed since gitfree pulled {ref or 'a version'} there: {shown}{more})"


# ---------------------------------------------------------------------------- a pull


def pull_into(
    entries: Sequence[FileEntry],
    dest: Path,
    *,
    ref: str,
    cache_dir: Path,
    single: bool,
    overwrite: bool,
    state: HashState,
    fetch: Callable[[Iterable[str]], None],
    progress: Callable[[], Callback] = lambda: DEFAULT_CALLBACK,
    jobs: int = 8,
) -> bool:
    """Make ``dest`` hold ``entries`` (version ``ref``); False when it already did.

    ``dest`` must have passed :func:`guard_destination`. What dead pulls left beside it is removed
    first. A destination holding, unmodified, what gitfree pulled there is updated in place (only
    what differs is written); one holding anything else needs ``overwrite`` and is replaced as a
    whole. ``fetch(md5s)`` brings the objects to write into the worker cache.

    Raises:
        InputError: ``dest`` holds other data (or changes made since gitfree pulled there) and
            ``overwrite`` is false; ``dest`` is a symbolic link.
    """
    validate_entries(entries)
    if dest.is_symlink():
        raise InputError(f"the destination {dest} is a symbolic link; give the real path")
    _make_parent(dest)
    sweep(dest.parent)
    pulled = _Pulled(cache_dir, dest)
    record = pulled.read(single)
    wanted = {"" if single else e.path: e.md5 for e in entries}
    if matches(dest, entries, single, state):
        if record is not None and (record[2] is not None or record[1] != wanted):
            pulled.write(ref, single, wanted)
        return False
    current: dict[str, str] | None = None
    if os.path.lexists(dest) and not (dest.is_dir() and not any(dest.iterdir())):
        detail = ""
        if record is not None:
            found, changes = _unmodified(dest, single, record[1], record[2], state)
            if changes:
                detail = _describe(record[0], changes)
            else:
                current = found
        if current is None and not overwrite:
            raise InputError(
                f"the destination {dest} exists and holds other data{detail}; pass overwrite=True "
                "to replace it, or choose another path",
                options=(("overwrite=True", "--overwrite"),),
            )
    if current is not None and not single:
        changed = [e for e in entries if current.get(e.path) != e.md5]
        fetch(e.md5 for e in changed)
        recorded = set(record[1]) | set(record[2] or {}) if record is not None else set()
        _update(
            entries,
            current,
            recorded,
            cache_dir,
            dest,
            state=state,
            jobs=jobs,
            callback=progress(),
            before=lambda: pulled.write(ref, single, wanted, previous=current),
        )
    else:
        fetch(e.md5 for e in entries)
        materialise(
            entries,
            cache_dir,
            dest,
            single=single,
            state=state,
            jobs=jobs,
            callback=progress(),
            before=lambda: pulled.write(ref, single, wanted, previous=current),
        )
    pulled.write(ref, single, wanted)
    return True


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
            f"the cached object {md5} does not match its hash (disk corruption?); it was removed from the worker "
            "cache, pull again"
        )


def _stage(
    entries: Sequence[FileEntry],
    cache_dir: Path,
    staging: Path,
    *,
    single: bool,
    state: HashState,
    jobs: int,
    callback: Callback,
) -> list[tuple[str, str]]:
    """Copy ``entries`` from the worker cache to ``staging``; return the cache objects hashed on the way.

    A cache object is hashed as it is copied unless the hash state proves it intact (verified
    before and not changed since: same inode, size and mtime); then the kernel copies it.
    """
    objects = {f"{cache_dir}/{object_key(md5)}": md5 for md5 in {e.md5 for e in entries}}
    trusted = {md5 for path, md5 in state.known(list(objects)).items() if objects[path] == md5}
    verified: list[tuple[str, str]] = []
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
    return verified


def _nothing() -> None:
    pass


def materialise(
    entries: Sequence[FileEntry],
    cache_dir: Path,
    dest: Path,
    *,
    single: bool,
    state: HashState,
    jobs: int = 8,
    callback: Callback = DEFAULT_CALLBACK,
    before: Callable[[], None] = _nothing,
) -> Path:
    """Write ``entries`` from the worker cache to ``dest``, replacing what is there as a whole.

    The version is staged beside ``dest`` and renamed into place (``before()`` is called just
    before): a file over a file with one atomic rename; otherwise ``dest`` is moved aside, the
    version moved in, and what was there removed. Interrupted, ``dest`` is what it was: here by
    putting it back, after a kill by the next pull beside it (:func:`sweep`).
    """
    validate_entries(entries)
    _make_parent(dest)
    callback.set_size(len(entries))
    with _Slot(dest) as slot:
        verified = _stage(entries, cache_dir, slot.new, single=single, state=state, jobs=jobs, callback=callback)
        before()
        try:
            mode: int | None = os.lstat(dest).st_mode
        except FileNotFoundError:
            mode = None
        if single and mode is not None and stat.S_ISREG(mode):
            os.replace(slot.new, dest)  # the old file or the new one at every instant
        elif mode is not None:
            os.rename(dest, slot.old)
            try:
                os.rename(slot.new, dest)
            except BaseException:
                os.rename(slot.old, dest)
                raise
            _remove(slot.old)
        else:
            os.rename(slot.new, dest)
    root = str(dest)
    state.remember([*verified, *((root if single else f"{root}/{e.path}", e.md5) for e in entries)])
    return dest


def _update(
    entries: Sequence[FileEntry],
    current: dict[str, str],
    recorded: set[str],
    cache_dir: Path,
    dest: Path,
    *,
    state: HashState,
    jobs: int,
    callback: Callback,
    before: Callable[[], None],
) -> None:
    """Turn ``dest``, whose files are ``current`` (path -> md5), into ``entries``, touching only what differs.

    The new and changed files are staged beside ``dest`` first (an integrity failure leaves ``dest``
    untouched); then ``before()`` is called (it records the update as under way), files the version
    no longer has are removed, their emptied folders pruned (among ``recorded``'s), and each staged
    file is renamed over its path: at every path the old file or the new one, never a partial one.
    """
    wanted = {e.path for e in entries}
    changed = [e for e in entries if current.get(e.path) != e.md5]
    removed = sorted(p for p in current if p not in wanted)
    callback.set_size(len(changed))
    root = str(dest)
    with _Slot(dest) as slot:
        verified = _stage(changed, cache_dir, slot.new, single=False, state=state, jobs=jobs, callback=callback)
        before()
        for path in removed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{root}/{path}")
        needed = _ancestors(wanted)
        for folder in sorted(_ancestors(recorded | set(current)) - needed, key=lambda d: d.count("/"), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(f"{root}/{folder}")
        staged = str(slot.new)
        for entry in changed:
            parent = entry.path.rpartition("/")[0]
            if parent:
                os.makedirs(f"{root}/{parent}", exist_ok=True)
            os.replace(f"{staged}/{entry.path}", f"{root}/{entry.path}")
    state.remember([*verified, *((f"{root}/{e.path}", e.md5) for e in changed)])
