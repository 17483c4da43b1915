"""The paths of a version: what a reader accepts, and what is under a folder.

One place answers "what is at or under this path of a version" for ``Store.open``, ``Store.pull(paths=)``,
``gitfree ls`` and ``gitfree://`` (:class:`Tree`), and one place says which paths a version may list at
all (:func:`validate_path`, :func:`validate_entries`): relative POSIX paths that cannot leave the
destination, never twice, never a file that is also a folder.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import InputError, NotFoundError, UnsafePathError
from .models import DiffEntry, FileEntry, Version

__all__ = ["Tree", "changes", "diff_entries", "select", "validate_entries", "validate_path"]


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
            f"a version lists the path {path!r}, which {reason} and could write outside the destination; "
            "refusing to write anything"
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


def _argument(path: str) -> str:
    """A path the caller named (not one a version lists): bad input when it could not be in a version."""
    wanted = path.strip("/")
    if wanted:
        try:
            validate_path(wanted)
        except UnsafePathError:
            raise InputError(
                f"{path!r} is not a path inside a version (no '..', '.', empty segments, backslashes or absolute "
                "paths); name a file or folder as `gitfree ls REF` lists it"
            ) from None
    return wanted


@dataclass
class Tree:
    """The files and folders of one version's entries, indexed by path."""

    files: dict[str, FileEntry]
    dirs: dict[str, set[str]] = field(default_factory=dict)
    """Folder (``""`` is the top) -> the paths of what is directly in it."""

    @classmethod
    def build(cls, entries: Iterable[FileEntry]) -> Tree:
        tree = cls({e.path: e for e in entries}, {"": set()})
        for path in tree.files:
            parts = path.split("/")
            for depth in range(len(parts)):
                tree.dirs.setdefault("/".join(parts[:depth]), set()).add("/".join(parts[: depth + 1]))
        return tree

    def under(self, path: str) -> list[FileEntry]:
        """The file at ``path``, or every file under the folder ``path`` (``""``: all of them)."""
        wanted = path.strip("/")
        if not wanted:
            return list(self.files.values())
        if wanted in self.files:
            return [self.files[wanted]]
        prefix = f"{wanted}/"
        return [e for p, e in self.files.items() if p.startswith(prefix)]

    def children(self, folder: str) -> list[str]:
        """The names directly in ``folder``, sorted, folders ending with ``/``."""
        return sorted(
            p.rpartition("/")[2] + ("/" if p in self.dirs else "") for p in self.dirs.get(folder.strip("/"), ())
        )

    def file(self, version: Version, path: str) -> FileEntry:
        """The file at ``path`` of ``version`` (for a single-file version, its name or ``""``), as
        :meth:`.Store.open` takes it: a folder is an ``InputError`` naming what is in it, anything else
        a ``NotFoundError``."""
        wanted = path.strip("/")
        if not version.is_dir and wanted in ("", version.pointer.out.path):
            wanted = version.pointer.out.path
        entry = self.files.get(wanted)
        if entry is not None:
            return entry
        inside = self.children(wanted) if wanted in self.dirs else []
        if inside:
            shown = ", ".join(inside[:5]) + (" ..." if len(inside) > 5 else "")
            where = f"{wanted or '/'} is a folder of {version.ref}"
            pull = f"pull it with paths=[{wanted!r}]" if wanted else "pull the version"
            cli_pull = f"pull it with --path {shlex.quote(wanted)}" if wanted else "pull the version"
            raise InputError(
                f"{where}: open one of its files ({shown}), or {pull}",
                cli=f"{where}: cat one of its files ({shown}), or {cli_pull}",
            )
        folder = wanted.rpartition("/")[0]
        near = sorted(self.dirs.get(folder, ()))[:1000]  # its folder's names: a typo is close to one of them
        close = difflib.get_close_matches(wanted, [p for p in near if p in self.files], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise NotFoundError(
            f"{version.ref} has no file {wanted!r}{hint}; list its files with `gitfree ls {version.ref}`"
        )

    def select(self, paths: Iterable[str]) -> list[FileEntry]:
        """The entries at or under each of ``paths`` (``labels/`` or ``labels`` for a folder), in listing order."""
        wanted = [_argument(p) for p in paths]
        missing = [p for p in wanted if p and p not in self.files and p not in self.dirs]
        if missing:
            raise NotFoundError(
                f"the version has no file or folder {missing[0]!r}; list its files with `gitfree ls REF`"
            )
        if any(not p for p in wanted):
            return list(self.files.values())
        chosen: dict[str, FileEntry] = {}
        for p in wanted:
            chosen.update((e.path, e) for e in self.under(p))
        return [e for path, e in self.files.items() if path in chosen]


def changes(old: Iterable[FileEntry], new: Iterable[FileEntry]) -> list[tuple[str, str | None, str | None]]:
    """``(path, old md5, new md5)`` of every path added (old ``None``), removed (new ``None``) or modified."""
    before = {e.path: e.md5 for e in old}
    after = {e.path: e.md5 for e in new}
    return [
        (p, before.get(p), after.get(p)) for p in sorted(before.keys() | after.keys()) if before.get(p) != after.get(p)
    ]


def diff_entries(changed: Sequence[tuple[str, str | None, str | None]], sizes: Mapping[str, int]) -> list[DiffEntry]:
    """The :class:`.DiffEntry` of each of :func:`changes`, with the sizes known of its objects."""
    return [
        DiffEntry(
            path=path,
            status="added" if om is None else "removed" if nm is None else "modified",
            old_md5=om,
            new_md5=nm,
            old_size=sizes.get(om or ""),
            new_size=sizes.get(nm or ""),
        )
        for path, om, nm in changed
    ]


def select(entries: Sequence[FileEntry], paths: Iterable[str]) -> list[FileEntry]:
    """The entries at or under each of ``paths``; see :meth:`Tree.select`."""
    return Tree.build(entries).select(paths)
