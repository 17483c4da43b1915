"""The DVC side: hashing data into the worker cache with dvc-data, exactly as ``dvc add`` does.

This is the only module that imports DVC; DVC's types do not leave it.

- :func:`check_source` and :func:`scan` decide what a commit takes from a path, before anything
  is hashed: what ``dvc add`` would take (DVC's own ``.dvcignore`` filter; ``.git``, ``.hg``,
  ``.dvc`` and nested DVC repositories left out), and only paths every reader of a version
  accepts (the rules of :func:`.tree.validate_path`, valid UTF-8), only regular files (or
  symbolic links to them, which DVC follows). Anything else is refused by name: a special file
  (FIFO, socket, device) would hang or break the hashing, a dangling or looping link has no
  content, and a linked directory is one that ``dvc add`` silently leaves out.
- :func:`stage` hashes what :func:`scan` found (reusing hashes from a persistent state, keyed by
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
import errno
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .errors import InputError, IntegrityError
from .layout import OBJECTS, object_key
from .localfs import atomic_write, copy_file
from .models import FileEntry, Output

if TYPE_CHECKING:
    from dvc_data.hashfile.state import State

__all__ = ["HashState", "Source", "Staged", "check_source", "ignore_rules", "scan", "stage"]

_COPY_THREADS = 4
_DVCIGNORE = ".dvcignore"
_REMEDY = "rename or remove it, or leave it out with a .dvcignore"

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

    def __enter__(self) -> HashState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Staged:
    """Data hashed and present in the worker cache, ready to push."""

    out: Output
    oids: frozenset[str]
    """Every object of the version: the ``.dir`` listing (for a directory) and each file."""


def stage(
    source: Path, out_path: str, cache_dir: Path, state: HashState, callback: Callback = DEFAULT_CALLBACK
) -> Staged:
    """Hash ``source`` (a file or directory) and add its objects to the worker cache at ``cache_dir``.

    Only what :func:`scan` accepts and keeps is hashed: dvc-data walks exactly the folders and
    files the scan checked (so nothing refused or ignored is ever read).
    """
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.fs.local import LocalFileSystem

    found = scan(source)
    fs = LocalFileSystem()
    cache = HashFileDB(fs, str(cache_dir / OBJECTS), state=state.dvc)
    try:
        _, meta, obj = build(cache, str(source), fs, "md5", state=state.dvc, callback=callback, ignore=_Scanned(found))
    except FileNotFoundError as exc:
        raise InputError(
            f"{exc.filename or source} disappeared while it was being committed; nothing was committed: "
            "commit again once the data is complete"
        ) from None
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


@dataclass(frozen=True)
class Source:
    """What a commit takes from a path: exactly what ``dvc add`` would, each path checked for every reader."""

    path: Path
    folders: tuple[tuple[str, tuple[str, ...]], ...]
    """For a directory: each folder holding files to commit, with their names (empty for a single file)."""
    nfiles: int
    left_out: int
    """Files and folders left out as ``dvc add`` leaves them out (``.dvcignore``, ``.git``, ``.dvc``...)."""


def check_source(source: Path) -> None:
    """Refuse a source that is no file or directory, or whose own name no reader would accept (cheap:
    no walk, no DVC). :func:`scan` checks what is inside a directory."""
    text = str(source)
    if "\x00" in text:
        raise InputError(f"cannot commit {text!r}: a path cannot contain a NUL byte")
    try:
        st = os.stat(source)
    except FileNotFoundError:
        if os.path.islink(source):
            raise InputError(
                f"cannot commit {source}: it is a symbolic link to {os.readlink(source)!r}, which does not exist"
            ) from None
        raise InputError(f"cannot commit {source}: it does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot commit {source}: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise InputError(
            f"cannot commit {source}: it is {_kind(st.st_mode)}, neither a file nor a directory "
            "(reading it could block forever or return no stable content)"
        )
    name = source.name
    # A file's name is the path of its only entry; a directory's only names the export's .dvc file.
    problem = _name_problem(name, drive=stat.S_ISREG(st.st_mode))
    if name in ("", ".", "..") or problem:
        why = problem or "is not the name of a file or directory"
        raise InputError(f"cannot commit {source}: its name {name!r} {why}; give another path to the same data")


def scan(source: Path) -> Source:
    """What a commit of ``source`` takes, checked, before anything is read or hashed.

    DVC's own ignore filter (``dvc.ignore.DvcIgnoreFilter``) decides what is left out, so the
    listing is the one ``dvc add`` makes: ``.git``, ``.hg`` and ``.dvc`` folders, nested DVC
    repositories, and whatever the ``.dvcignore`` files say. Their root is the DVC repository the
    source lies in (found as DVC finds it: the nearest parent with a ``.dvc`` folder), else the source
    itself, whose own ``.dvcignore`` files (at its top and in any folder) then apply as a repository's
    would. The ``.dvcignore`` files are rules, never data: DVC refuses to add a folder holding one, and
    gitfree follows them and leaves them out.

    Raises:
        InputError: naming the first path that cannot be committed (and how many there are): a name no
            reader accepts, a special file, a dangling or looping link, a linked directory, an
            unreadable folder; a source ``dvc add`` would refuse as ignored; a directory with no files.
    """
    check_source(source)
    _quiet_dvc()
    top = str(source)
    root = _workspace(source)
    ignore = _ignore_filter(source, root)
    if ignore is not None and root != top:
        _refuse_ignored(source, root, ignore)
    if ignore is None or not os.path.isdir(source):
        return Source(path=source, folders=(), nfiles=1, left_out=0)

    problems: list[str] = []
    folders: list[tuple[str, tuple[str, ...]]] = []
    nfiles = left_out = 0
    cut = len(top) + 1

    def unreadable(exc: OSError) -> None:
        where = str(exc.filename or top)
        problems.append(f"the folder {where[cut:] or '.'!r} cannot be read ({exc.strerror or exc})")

    for folder, dirs, files in os.walk(top, onerror=unreadable):
        rel = folder[cut:]
        try:
            kept_dirs, kept_files = ignore(folder, list(dirs), list(files))
        except (OSError, UnicodeError, ValueError) as exc:
            raise InputError(f"cannot commit {source}: a .dvcignore in {rel or '.'!r} cannot be read: {exc}") from None
        kept_files = [name for name in kept_files if name != _DVCIGNORE]
        left_out += len(dirs) - len(kept_dirs) + len(files) - len(kept_files)
        dirs[:] = []
        for name in kept_dirs:
            relpath = f"{rel}/{name}" if rel else name
            if (problem := _folder_problem(f"{folder}/{name}", relpath)) is not None:
                problems.append(problem)
            else:
                dirs.append(name)
        for name in kept_files:
            relpath = f"{rel}/{name}" if rel else name
            problem = _name_problem(relpath) or _file_problem(f"{folder}/{name}")
            if problem is not None:
                problems.append(f"{relpath!r} {problem}")
        if kept_files:
            folders.append((folder, tuple(kept_files)))
            nfiles += len(kept_files)
    _conclude(source, problems, folders, cut, nfiles, left_out)
    return Source(path=source, folders=tuple(folders), nfiles=nfiles, left_out=left_out)


def ignore_rules(folder: Path) -> Callable[[str, list[str], list[str]], tuple[list[str], list[str]]]:
    """What a commit of ``folder`` takes, as :func:`scan` decides it (DVC's own ignore filter: ``.git``, ``.hg``,
    ``.dvc``, nested DVC repositories, the ``.dvcignore`` rules, and the ``.dvcignore`` files themselves): a
    function of a folder's path below ``folder`` (as ``str(folder)`` spells it), its folders' and its files' names,
    giving the folders and the files kept. For versions by reference, whose folder is walked by ``sources``.

    Raises:
        InputError: the DVC repository ``folder`` lies in ignores it, or a ``.dvcignore`` cannot be read.
    """
    _quiet_dvc()
    root = _workspace(folder)
    ignore = _ignore_filter(folder, root)
    if root != str(folder):
        _refuse_ignored(folder, root, ignore)

    def kept(path: str, dirs: list[str], files: list[str]) -> tuple[list[str], list[str]]:
        try:
            kept_dirs, kept_files = ignore(path, list(dirs), list(files))
        except (OSError, UnicodeError, ValueError) as exc:
            raise InputError(f"cannot commit {folder}: a .dvcignore in {path!r} cannot be read: {exc}") from None
        return list(kept_dirs), [name for name in kept_files if name != _DVCIGNORE]

    return kept


def _conclude(
    source: Path, problems: list[str], folders: list[tuple[str, tuple[str, ...]]], cut: int, nfiles: int, left_out: int
) -> None:
    """The end of a scan: the first problem found, or a directory with no files, is refused by name."""
    if problems:
        more = f" ({len(problems)} paths cannot be committed; this is the first)" if len(problems) > 1 else ""
        raise InputError(f"cannot commit {source}: {problems[0]}{more}; nothing was hashed or uploaded")
    if not nfiles:
        why = f" ({left_out} left out as dvc add leaves them out: .dvcignore, .git, .dvc)" if left_out else ""
        raise InputError(f"cannot commit {source}: the directory holds no files{why}")
    _check_listing(source, folders, cut)
    if left_out:
        logger.info("%s: %d files or folders left out, as dvc add leaves them out", source, left_out)


def _refuse_ignored(source: Path, root: str, ignore: Any) -> None:
    """``dvc add`` refuses a source its repository's ``.dvcignore`` ignores: so does gitfree."""
    top = str(source)
    if ignore.is_ignored(ignore.fs, top):
        rules = ", ".join(str(info) for info in ignore.check_ignore(top).pattern_infos) or ".dvcignore"
        raise InputError(
            f"cannot commit {source}: the DVC repository {root} ignores it ({rules}), so dvc add would refuse "
            "it too; change that .dvcignore or commit another path"
        )


def _folder_problem(path: str, relpath: str) -> str | None:
    """Why the folder ``relpath`` (at ``path``) cannot be committed, if it cannot."""
    if (problem := _name_problem(relpath)) is not None:
        return f"the folder {relpath!r} {problem}"
    if os.path.islink(path):
        return (
            f"{relpath!r} is a symbolic link to a directory ({os.readlink(path)!r}): dvc add does not "
            "follow those and would silently leave its files out, so gitfree refuses it; put the folder "
            "itself there, or leave it out with a .dvcignore"
        )
    return None


class _Scanned:
    """dvc-data's ``Ignore`` protocol, replaying the walk :func:`scan` checked: dvc-data hashes those files only."""

    def __init__(self, found: Source) -> None:
        self._folders = found.folders

    def walk(self, fs: Any, path: str, **kwargs: Any) -> Iterator[tuple[str, list[str], list[str]]]:
        for folder, files in self._folders:
            yield folder, [], list(files)

    def find(self, fs: Any, path: str) -> Iterator[str]:
        for folder, files in self._folders:
            for name in files:
                yield f"{folder}/{name}"


def _workspace(source: Path) -> str:
    """The root of the ``.dvcignore`` rules: the DVC repository ``source`` lies in, else ``source`` itself."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    start = source if os.path.isdir(source) else source.parent
    try:
        return str(Repo.find_root(str(start)))
    except NotDvcRepoError:
        return str(source)


def _ignore_filter(source: Path, root: str) -> Any:
    """DVC's ignore filter rooted at ``root`` (``None`` for a single file outside any DVC repository)."""
    from dvc.fs import localfs
    from dvc.ignore import DvcIgnoreFilter

    if root == str(source) and not os.path.isdir(source):
        return None
    try:
        return DvcIgnoreFilter(localfs, root)
    except (OSError, UnicodeError, ValueError) as exc:
        raise InputError(f"cannot commit {source}: the .dvcignore of {root} cannot be read: {exc}") from None


def _name_problem(path: str, drive: bool = True) -> str | None:
    """Why a reader of a version would refuse ``path`` (a path inside it, or the name of a single file), if it would.

    The rules of :func:`.tree.validate_path`, which every reader applies, plus valid UTF-8 (a name
    that is not arrives as surrogates, which no JSON listing can hold). A path read from a directory
    has no empty, ``.`` or ``..`` segment and is relative; ``drive=False`` (a directory's own name)
    skips the Windows drive rule, which readers apply to paths inside a version only.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return (
            f"is not valid UTF-8 (its bytes are {os.fsencode(path)!r}): a version lists its paths as UTF-8 text, "
            f"so no reader could name it; {_REMEDY}"
        )
    if "\x00" in path:
        return f"contains a NUL byte; {_REMEDY}"
    if "\\" in path:
        return f"contains a backslash, which readers refuse (on Windows it separates folders); {_REMEDY}"
    if drive and len(path) > 1 and path[1] == ":":
        return f"starts with a letter and a colon, which readers take for a Windows drive (an absolute path); {_REMEDY}"
    return None


def _file_problem(path: str) -> str | None:
    """Why the file at ``path`` cannot be committed (not a regular file, nor a link to one), if so."""
    try:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode):
            return None if stat.S_ISREG(st.st_mode) else f"is {_kind(st.st_mode)}, not a regular file; {_REMEDY}"
        target = os.readlink(path)
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"is a symbolic link to {os.readlink(path)!r}, which does not exist (a dangling link); {_REMEDY}"
        return "disappeared while it was being committed; commit again once the data is complete"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"is a symbolic link that never reaches a file (a loop: {exc.strerror}); {_REMEDY}"
        return f"cannot be read ({exc.strerror or exc}); {_REMEDY}"
    if stat.S_ISREG(st.st_mode):
        return None  # DVC follows a link to a file and commits the file's content
    return f"is a symbolic link to {target!r}, which is {_kind(st.st_mode)}, not a regular file; {_REMEDY}"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"


def _check_listing(source: Path, folders: list[tuple[str, tuple[str, ...]]], cut: int) -> None:
    """The readers' own check of a version's paths, on the listing this commit would make: whatever
    they would refuse (should their rules ever grow stricter than :func:`_name_problem`) is refused here."""
    from .errors import UnsafePathError
    from .tree import validate_entries

    entries = [
        FileEntry(path=f"{folder[cut:]}/{name}" if folder[cut:] else name, md5="0" * 32)
        for folder, names in folders
        for name in names
    ]
    try:
        validate_entries(entries)
    except UnsafePathError as exc:
        raise InputError(f"cannot commit {source}: no reader could read the version: {exc}") from None


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
    atomic_write(target, data)
