"""``gitfree://``: a read-only fsspec filesystem over the versions of a store.

A path is a ref followed by a path inside that version::

    gitfree://images@3/labels/train.csv      # version 3
    gitfree://images@prod/labels/            # the version tagged prod
    gitfree://images/labels/train.csv        # the latest version, resolved at each call
    gitfree://raw/sales@2/train.csv          # a nested dataset name: the ref ends at the '@' segment
    gitfree://                               # the datasets of the store

The ref ends at the first segment holding ``@``. A path without ``@`` names the latest version of
the longest dataset name it starts with (``raw/sales/x`` is ``raw/sales``'s ``x`` when that dataset
exists, else ``raw``'s ``sales/x``); write ``raw@latest/sales/x`` to mean ``raw``'s folder.

Files are read through the worker cache: opening one fetches only its object, hashed as it
streams (a corrupted cached copy is replaced); ``get``, ``cat`` and ``glob`` fetch what they need
in parallel. The filesystem is registered with fsspec, so ``pandas.read_csv("gitfree://images@3/
labels/train.csv", storage_options={"store": "s3://bucket/prefix"})`` works once gitfree is
installed. The storage options are :class:`~gitfree.versioning.Store`'s arguments; instances are
cached on every setting (arguments, the ``GITFREE_*``/``AWS_*`` environment; secrets only hashed), and
pickle as the store's settings (for dask's workers).

Sizes are not part of DVC's directory listings: they come from the worker cache, else from
one HEAD request per object, asked for only when a caller needs them (``ls``/``info``/``find``
with details) and kept with the version's listing (the listings of the 16 versions used last).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn

from fsspec.config import apply_config
from fsspec.spec import AbstractFileSystem, _Cached
from fsspec.utils import stringify_path
from pydantic import SecretStr

from . import layout
from .config import StoreSettings
from .errors import GitfreeError, InputError, NotFoundError
from .models import FileEntry, Version
from .refs import parse_ref, validate_dataset_name
from .store import Store
from .tree import Tree

__all__ = ["GitfreeFileSystem"]

_TREES = 16
"""Listings of at most this many versions are held in memory, the least recently used dropped first."""

_READ_ONLY = (
    "gitfree:// is read-only: a version never changes. Commit new data as a new version with "
    "Store.commit(...) or `gitfree commit DATASET PATH`"
)


@dataclass
class _Tree:
    """The files and folders of one version (indexed by :class:`.tree.Tree`), and the sizes fetched so far."""

    version: Version
    files: dict[str, FileEntry]
    dirs: dict[str, set[str]]
    sizes: dict[str, int] = field(default_factory=dict)
    """Object sizes fetched so far (md5 -> bytes)."""

    @classmethod
    def build(cls, version: Version, entries: list[FileEntry]) -> _Tree:
        tree = Tree.build(entries)
        return cls(version, tree.files, tree.dirs)


_ENVIRONMENT = ("GITFREE_", "AWS_")
_ENVIRONMENT_NAMES = ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")
"""What a store's settings come from besides the arguments: its variables, the AWS chain's, the default dirs'."""


def _digest(value: object) -> str:
    return hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()


def _plain(value: object) -> object:
    """An argument as it enters the instance key: a secret only as its hash."""
    if isinstance(value, SecretStr):
        return {"secret": _digest(value.get_secret_value())}
    if isinstance(value, StoreSettings):
        return {name: _plain(v) for name, v in value.model_dump().items()}
    if isinstance(value, Store):
        return {
            "url": value.url,
            "cache_dir": str(value.cache_dir),
            "settings": _plain(value.settings),
            "progress": repr(getattr(value, "_progress", None)),
        }
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _instance_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """One digest of every setting that decides what a filesystem reads and how: its arguments (a
    :class:`Store` by all its settings; secrets hashed), the ``GITFREE_*`` and ``AWS_*`` variables and
    the default folders they fall back on (hashed), and the working directory (relative paths)."""
    secrets = {"secret_access_key", "session_token", "access_key_id"}
    material = {
        "args": [_plain(a) for a in args],
        "kwargs": {
            k: {"secret": _digest(v)} if k in secrets and isinstance(v, str) else _plain(v)
            for k, v in sorted(kwargs.items())
            if k not in ("skip_instance_cache", "_gitfree_key")
        },
        "environment": {
            name: _digest(value)
            for name, value in sorted(os.environ.items())
            if name.startswith(_ENVIRONMENT) or name in _ENVIRONMENT_NAMES
        },
        "cwd": os.getcwd(),
    }
    return _digest(json.dumps(material, sort_keys=True, default=repr))


class _KeyedBySettings(_Cached):  # type: ignore[misc]  # fsspec is untyped
    """fsspec's instance cache, keyed on every setting (fsspec's own key is ``str()`` of the arguments:
    a :class:`Store`'s repr is its URL only, so two stores with other caches or credentials would share
    one filesystem)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs = apply_config(cls, kwargs)
        kwargs["_gitfree_key"] = _instance_key(args, kwargs)
        return super().__call__(*args, **kwargs)


def _rebuild(settings: StoreSettings) -> GitfreeFileSystem:
    """Unpickle a filesystem: the store again from its settings (its clients do not pickle)."""
    return GitfreeFileSystem(Store(settings=settings))


class GitfreeFileSystem(AbstractFileSystem, metaclass=_KeyedBySettings):  # type: ignore[misc]  # fsspec is untyped
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

    def __init__(
        self, store: str | os.PathLike[str] | Store | None = None, *, _gitfree_key: str = "", **store_options: Any
    ) -> None:
        super().__init__(store=store, **store_options)
        if isinstance(store, Store):
            if store_options:
                raise InputError("pass either a Store or store options to GitfreeFileSystem, not both")
            self.store = store
        else:
            self.store = Store(store, **store_options)
        self._trees: OrderedDict[tuple[str, int], _Tree] = OrderedDict()
        self._pinned: dict[str, Version] = {}
        self._datasets: set[str] = set()
        """Names known to be datasets (a dataset never goes away: its newest version is always kept)."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitfreeFileSystem({self.store.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle (for dask's workers) as the store's settings; the other side builds its own clients."""
        return _rebuild, (self.store.settings,)

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

    def _is_dataset(self, name: str) -> bool:
        """Is ``name`` a dataset of the store? One listing request of at most one key (or none: known)."""
        if name in self._datasets:
            return True
        try:
            validate_dataset_name(name)
        except InputError:
            return False
        keys = self.store.backend.list(layout.versions_prefix(name))
        found = False
        try:
            for key in keys:
                parsed = layout.parse_version_key(key)
                if parsed is not None and parsed[0] == name:
                    found = True
                    break
        finally:
            close = getattr(keys, "close", None)
            if close is not None:
                close()  # stop the listing after its first page
        if found:
            with self._lock:
                self._datasets.add(name)
        return found

    def _split(self, path: str) -> tuple[str, str]:
        """``REF/inner`` into the ref and the path inside the version.

        The ref ends at the first segment holding ``@`` (``raw/sales@3/train.csv``: ``raw/sales@3``). A
        path without ``@`` names the latest version of the longest dataset name it starts with
        (``raw/sales/train.csv`` is ``raw/sales`` if that dataset exists, else ``raw``'s ``sales/train.csv``).

        Raises:
            FileNotFoundError: no dataset name starts the path.
        """
        parts = path.split("/")
        for i, part in enumerate(parts):
            if "@" in part:
                return "/".join(parts[: i + 1]), "/".join(parts[i + 1 :])
        for i in range(len(parts), 0, -1):
            name = "/".join(parts[:i])
            if self._is_dataset(name):
                return name, "/".join(parts[i:])
        names = self.store.datasets()
        have = f"it has: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}" if names else "it has no datasets"
        raise FileNotFoundError(
            errno.ENOENT,
            f"no dataset of {self.store.url} starts the path {path!r} ({have}); write REF/PATH, e.g. "
            f"{names[0] if names else 'images'}@latest/PATH",
            path,
        )

    def _namespace(self, path: str) -> list[str] | None:
        """For a path with no ``@`` that is no dataset but begins dataset names (``raw`` of ``raw/sales``):
        the names one level below it, as folders of the store's root; else None."""
        if "@" in path:
            return None
        names = self.store.datasets()
        below = sorted({"/".join(n.split("/")[: path.count("/") + 2]) for n in names if n.startswith(f"{path}/")})
        return below or None

    def _locate(self, path: str) -> tuple[str, _Tree, str]:
        """Split ``REF/inner`` into the ref, the version's tree and the inner path."""
        ref, inner = self._split(self._strip_protocol(path))
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
            found = self.store.sizes(wanted)
            with self._lock:
                tree.sizes.update(found)
        return {
            e.md5: e.size if e.size is not None else tree.sizes[e.md5]
            for e in entries
            if e.size is not None or e.md5 in tree.sizes
        }

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
        try:
            ref, tree, inner = self._locate(path)
        except FileNotFoundError:
            below = self._namespace(path)
            if below is None:
                raise
            return [self._dir_info(n) for n in below] if detail else below
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
        try:
            _, tree, inner = self._locate(path)
        except FileNotFoundError:
            if self._namespace(path) is None:
                raise
            return self._dir_info(path)
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
            self.store.prefetch(tree.version, md5s)

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
