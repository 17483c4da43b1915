"""``gitfree://``: a read-only fsspec filesystem over the versions of a store.

A path is a ref followed by a path inside that version::

    gitfree://images@3/labels/train.csv      # version 3
    gitfree://images@prod/labels/            # the version tagged prod
    gitfree://images/labels/train.csv        # the latest version, resolved at each call
    gitfree://                               # the datasets of the store

Files are read through the worker cache: opening one fetches only its object, hashed as it
streams (a corrupted cached copy is replaced); ``get``, ``cat`` and ``glob`` fetch what they need
in parallel. The filesystem is registered with fsspec, so ``pandas.read_csv("gitfree://images@3/
labels/train.csv", storage_options={"store": "s3://bucket/prefix"})`` works once gitfree is
installed. The storage options are :class:`~gitfree.versioning.Store`'s arguments.

Sizes are not part of DVC's directory listings: they come from the worker cache, else from
one HEAD request per object, asked for only when a caller needs them (``ls``/``info``/``find``
with details) and kept with the version's listing (the listings of the 16 versions used last).
"""

from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn

from fsspec.spec import AbstractFileSystem
from fsspec.utils import stringify_path

from .errors import GitfreeError, InputError, NotFoundError
from .models import FileEntry, Version
from .refs import parse_ref
from .store import Store

__all__ = ["GitfreeFileSystem"]

_TREES = 16
"""Listings of at most this many versions are held in memory, the least recently used dropped first."""

_READ_ONLY = (
    "gitfree:// is read-only: a version never changes. Commit new data as a new version with "
    "Store.commit(...) or `gitfree commit DATASET PATH`"
)


@dataclass
class _Tree:
    """The files and folders of one version, indexed for listing."""

    version: Version
    files: dict[str, FileEntry]
    dirs: dict[str, set[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    """Object sizes fetched so far (md5 -> bytes)."""

    @classmethod
    def build(cls, version: Version, entries: list[FileEntry]) -> _Tree:
        tree = cls(version, {e.path: e for e in entries}, {"": set()})
        for path in tree.files:
            parts = path.split("/")
            for depth in range(len(parts)):
                parent = "/".join(parts[:depth])
                tree.dirs.setdefault(parent, set()).add("/".join(parts[: depth + 1]))
        return tree


class GitfreeFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Read the versions of a gitfree store with fsspec (``gitfree://REF/PATH``).

    Args:
        store: the store URL (``s3://bucket/prefix``, ``file:///path``) or a :class:`Store`.
            Default: ``$GITFREE_STORE``, as for :class:`Store`.
        **store_options: :class:`Store`'s other arguments (``endpoint_url``, ``cache_dir``,
            ``access_key_id``, ``secret_access_key``, ``region``, ``profile``, ``jobs``).

    Example:
        >>> fs = GitfreeFileSystem("s3://ml-data/versions")              # doctest: +SKIP
        >>> fs.ls("images@3/labels", detail=False)                        # doctest: +SKIP
        ['images@3/labels/test.csv', 'images@3/labels/train.csv']
        >>> pandas.read_csv("gitfree://images@3/labels/train.csv",       # doctest: +SKIP
        ...                 storage_options={"store": "s3://ml-data/versions"})
    """

    protocol = "gitfree"
    root_marker = ""

    def __init__(self, store: str | os.PathLike[str] | Store | None = None, **store_options: Any) -> None:
        super().__init__(store=store, **store_options)
        if isinstance(store, Store):
            if store_options:
                raise InputError("pass either a Store or store options to GitfreeFileSystem, not both")
            self.store = store
        else:
            self.store = Store(store, **store_options)
        self._trees: OrderedDict[tuple[str, int], _Tree] = OrderedDict()
        self._pinned: dict[str, Version] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitfreeFileSystem({self.store.url!r})"

    # ------------------------------------------------------------------ paths and versions

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        if path.startswith("gitfree://"):
            path = path[len("gitfree://") :]
        elif path.startswith("gitfree::"):
            path = path[len("gitfree::") :]
        return path.strip("/")

    def unstrip_protocol(self, name: str) -> str:
        return f"gitfree://{name}"

    def _resolve(self, ref: str) -> Version:
        """The version ``ref`` names; numbered versions are immutable and remembered."""
        if ref in self._pinned:
            return self._pinned[ref]
        try:
            pinned = parse_ref(ref).number is not None
            version = self.store.show(ref)
        except (NotFoundError, InputError) as exc:
            raise FileNotFoundError(errno.ENOENT, str(exc), ref) from None
        if pinned:
            self._pinned[ref] = version
        return version

    def _locate(self, path: str) -> tuple[str, _Tree, str]:
        """Split ``REF/inner`` into the ref, the version's tree and the inner path."""
        path = self._strip_protocol(path)
        ref, _, inner = path.partition("/")
        version = self._resolve(ref)
        key = (version.dataset, version.number)
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
        if tree is None:
            tree = _Tree.build(version, self.store.files(version))
            with self._lock:
                self._trees[key] = tree
                while len(self._trees) > _TREES:
                    self._trees.popitem(last=False)
        return ref, tree, inner

    def _size_of(self, tree: _Tree, entries: Iterable[FileEntry]) -> dict[str, int]:
        """The size of each entry's object (an object missing from the store has none)."""
        entries = list(entries)
        wanted = {e.md5 for e in entries if e.size is None and e.md5 not in tree.sizes}
        if wanted:
            found = self.store._sizes(wanted)
            with self._lock:
                tree.sizes.update(found)
        return {e.md5: e.size if e.size is not None else tree.sizes[e.md5] for e in entries if e.md5 in tree.sizes}

    def _file_info(self, name: str, tree: _Tree, entry: FileEntry, size: int | None) -> dict[str, Any]:
        return {
            "name": name,
            "type": "file",
            "size": size,
            "md5": entry.md5,
            "version": tree.version.ref,
            "created": tree.version.created_at,
        }

    def _dir_info(self, name: str, version: Version | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {"name": name, "type": "directory", "size": 0}
        if version is not None:
            info["version"] = version.ref
            info["created"] = version.created_at
        return info

    def _entries(self, path: str, sizes: bool, maxdepth: int | None) -> Iterator[dict[str, Any]]:
        """Info of every file and folder under ``path`` (a folder of a version), ``maxdepth`` levels down."""
        ref, tree, inner = self._locate(path)
        prefix = f"{inner}/" if inner else ""
        if inner and inner not in tree.dirs:
            raise self._not_dir(path, tree, inner)

        def within(p: str) -> bool:
            return p.startswith(prefix) and (maxdepth is None or p[len(prefix) :].count("/") < maxdepth)

        files = [e for p, e in tree.files.items() if within(p)]
        known = self._size_of(tree, files) if sizes else {}
        for e in files:
            yield self._file_info(f"{ref}/{e.path}", tree, e, known.get(e.md5))
        for d in tree.dirs:
            if d and within(d):
                yield self._dir_info(f"{ref}/{d}")

    def _not_dir(self, path: str, tree: _Tree, inner: str) -> OSError:
        if inner in tree.files:
            return NotADirectoryError(errno.ENOTDIR, f"{inner!r} is a file of {tree.version.ref}", path)
        return FileNotFoundError(
            errno.ENOENT, f"{tree.version.ref} has no file or folder {inner!r}; list it with `gitfree ls`", path
        )

    # ------------------------------------------------------------------ listing

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        if not path:
            names = self.store.datasets()
            return [self._dir_info(n) for n in names] if detail else names
        ref, tree, inner = self._locate(path)
        if inner in tree.files:
            entry = tree.files[inner]
            size = self._size_of(tree, [entry]).get(entry.md5) if detail else None
            return [self._file_info(f"{ref}/{inner}", tree, entry, size)] if detail else [f"{ref}/{inner}"]
        if inner not in tree.dirs:
            raise self._not_dir(path, tree, inner)
        children = sorted(tree.dirs[inner])
        if not detail:
            return [f"{ref}/{c}" for c in children]
        files = [tree.files[c] for c in children if c in tree.files]
        known = self._size_of(tree, files)
        return [
            self._file_info(f"{ref}/{c}", tree, tree.files[c], known.get(tree.files[c].md5))
            if c in tree.files
            else self._dir_info(f"{ref}/{c}")
            for c in children
        ]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if not path:
            return self._dir_info("")
        _, tree, inner = self._locate(path)
        if inner in tree.files:
            entry = tree.files[inner]
            return self._file_info(path, tree, entry, self._size_of(tree, [entry]).get(entry.md5))
        if inner in tree.dirs:
            return self._dir_info(path, tree.version)
        raise self._not_dir(path, tree, inner)

    def find(
        self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False, **kwargs: Any
    ) -> Any:
        """Every file under ``path`` (and folders with ``withdirs``), from the version's listing alone.

        Sizes are fetched only with ``detail=True``.
        """
        path = self._strip_protocol(path)
        sizes = detail and not kwargs.pop("_no_sizes", False)
        if not path:  # the store root: fsspec's walk over ls() of each dataset's latest version
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        try:
            infos = list(self._entries(path, sizes, maxdepth))
        except NotADirectoryError:
            return {path: self.info(path)} if detail else [path]
        except FileNotFoundError:
            return {} if detail else []
        out = {i["name"]: i for i in infos if withdirs or i["type"] == "file"}
        if withdirs:
            out[path] = self.info(path)
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        """fsspec's glob over the version's listing; sizes are fetched only for the matches."""
        detail = kwargs.pop("detail", False)
        matched = super().glob(path, maxdepth=maxdepth, detail=True, _no_sizes=True, **kwargs)
        if not detail:
            return list(matched)
        return {name: self.info(name) if info.get("size") is None else info for name, info in matched.items()}

    def exists(self, path: str, **kwargs: Any) -> bool:
        try:
            self.info(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def ukey(self, path: str) -> str:
        """The md5 of a file: versions are immutable, so it identifies its content."""
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, "a folder has no content key", path)
        return str(info["md5"])

    def checksum(self, path: str) -> int:
        return int(self.ukey(path), 16)

    def created(self, path: str) -> Any:
        _, tree, _ = self._locate(path)
        return tree.version.created_at

    modified = created

    # ------------------------------------------------------------------ reading

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> BinaryIO:
        if mode != "rb":
            self._read_only()
        _, tree, inner = self._locate(path)
        if inner not in tree.files:
            if inner in tree.dirs:
                raise IsADirectoryError(errno.EISDIR, f"{inner or '/'} is a folder of {tree.version.ref}", path)
            raise self._not_dir(path, tree, inner)
        try:
            return self.store.open(tree.version, inner)
        except NotFoundError as exc:  # pragma: no cover - the tree said it exists
            raise FileNotFoundError(errno.ENOENT, str(exc), path) from None

    def _prefetch(self, paths: Iterable[str]) -> None:
        """Download the objects of ``paths`` (files) missing from the worker cache, in parallel."""
        from .staging import HashState

        by_version: dict[tuple[str, int], tuple[_Tree, set[str]]] = {}
        for p in paths:
            try:
                _, tree, inner = self._locate(p)
            except (FileNotFoundError, GitfreeError):
                continue  # reported by the per-file call that follows
            entry = tree.files.get(inner)
            if entry is not None:
                by_version.setdefault((tree.version.dataset, tree.version.number), (tree, set()))[1].add(entry.md5)
        for tree, md5s in by_version.values():
            state = HashState(self.store.cache_dir)
            try:
                self.store._fetch(tree.version, md5s, state)
            finally:
                state.close()

    def cat(self, path: Any, recursive: bool = False, on_error: str = "raise", **kwargs: Any) -> Any:
        paths = self.expand_path(path, recursive=recursive)
        if len(paths) > 1:
            self._prefetch(paths)
        return super().cat(path, recursive=recursive, on_error=on_error, **kwargs)

    def get(self, rpath: Any, lpath: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Copy files of versions to local paths; the objects come down in parallel first."""
        self._prefetch(self.expand_path(rpath, recursive=recursive, maxdepth=kwargs.get("maxdepth")))
        super().get(rpath, lpath, recursive=recursive, **kwargs)

    # ------------------------------------------------------------------ writing: refused

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise OSError(errno.EROFS, _READ_ONLY)

    mkdir = makedirs = rmdir = touch = _read_only
    rm = rm_file = _rm = cp_file = put_file = put = mv = pipe_file = _read_only
