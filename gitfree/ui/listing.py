"""A version's files as folders to browse, built once per listing and kept in a small LRU.

A listing never changes (it is named by its md5), so the folders of a version of 100,000 files are worked
out once, when its first page is asked for, and every later page, folder and file of any version with the
same listing is a dictionary lookup. Object sizes (immutable too) are kept the same way, so a page asks the
store only for the sizes of files it has not shown before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gitfree.versioning import FileEntry, Store, Version

__all__ = ["Child", "Index", "Listings"]

INDEXES_KEPT = 4
"""Listings kept browsable at once (the least recently used is dropped first)."""
ENTRIES_KEPT = 400_000
"""At most this many files across the kept listings (the newest listing is always kept)."""
SIZES_KEPT = 200_000
"""Object sizes remembered (md5 -> bytes)."""


@dataclass(frozen=True)
class Child:
    """One entry of a folder: a file, or a folder with the number of files under it."""

    name: str
    path: str
    folder: bool
    files: int
    entry: FileEntry | None = None


class Index:
    """The files of one listing and, for each folder (``""`` is the top), what is directly in it: folders
    first, then files, each by name, with the number of files under every folder."""

    def __init__(self, entries: Sequence[FileEntry]) -> None:
        self.files: dict[str, FileEntry] = {e.path: e for e in entries}
        kids: dict[str, dict[str, bool]] = {"": {}}
        counts: dict[str, int] = {"": len(self.files)}
        for path in self.files:
            folder, _, name = path.rpartition("/")
            kids.setdefault(folder, {})[name] = False
            while folder and folder not in counts:  # a folder seen for the first time: its parents too
                counts[folder] = 0
                parent, _, leaf = folder.rpartition("/")
                kids.setdefault(parent, {})[leaf] = True
                folder = parent
        for path in self.files:
            folder = path.rpartition("/")[0]
            while folder:
                counts[folder] += 1
                folder = folder.rpartition("/")[0]
        self.counts = counts
        self._children = {
            folder: sorted(items.items(), key=lambda item: (not item[1], item[0])) for folder, items in kids.items()
        }

    @property
    def size(self) -> int:
        """How many files it holds."""
        return len(self.files)

    def is_folder(self, path: str) -> bool:
        return path in self._children

    def children(self, folder: str, start: int = 0, stop: int | None = None) -> list[Child]:
        """What is directly in ``folder``, from the ``start``-th entry to before the ``stop``-th."""
        items = self._children.get(folder, [])[start:stop]
        out = []
        for name, is_folder in items:
            path = f"{folder}/{name}" if folder else name
            if is_folder:
                out.append(Child(name, path, True, self.counts[path]))
            else:
                out.append(Child(name, path, False, 1, self.files[path]))
        return out

    def count(self, folder: str) -> int:
        """How many entries are directly in ``folder``."""
        return len(self._children.get(folder, []))


class Listings:
    """The :class:`Index` of each listing recently browsed, by the listing's md5, and object sizes by md5."""

    def __init__(self) -> None:
        self._indexes: OrderedDict[str, Index] = OrderedDict()
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._build = threading.Lock()
        self.built = 0
        """How many indexes were built (a test proves a second page of a version builds none)."""

    def index(self, store: Store, version: Version) -> Index:
        """The folders of ``version``: from the LRU, else built from :meth:`Store.files` (one parse)."""
        key = version.md5
        with self._lock:
            found = self._indexes.get(key)
            if found is not None:
                self._indexes.move_to_end(key)
                return found
        with self._build:  # one build at a time: two requests for a new listing parse it once
            with self._lock:
                found = self._indexes.get(key)
            if found is None:
                found = Index(store.files(version))
                self.built += 1
        with self._lock:
            self._indexes[key] = found
            self._indexes.move_to_end(key)
            while len(self._indexes) > 1 and (
                len(self._indexes) > INDEXES_KEPT or sum(i.size for i in self._indexes.values()) > ENTRIES_KEPT
            ):
                self._indexes.popitem(last=False)
        return found

    def sizes(self, store: Store, entries: Iterable[FileEntry]) -> dict[str, int]:
        """The size of each entry's object (by md5): the listing's, the LRU's, else :meth:`Store.sizes`."""
        wanted = {e.md5: e.size for e in entries}
        known = {md5: size for md5, size in wanted.items() if size is not None}
        with self._lock:
            for md5 in wanted:
                if md5 not in known and md5 in self._sizes:
                    known[md5] = self._sizes[md5]
                    self._sizes.move_to_end(md5)
        missing = [md5 for md5 in wanted if md5 not in known]
        if missing:
            found = store.sizes(missing)
            known.update(found)
            with self._lock:
                self._sizes.update(found)
                while len(self._sizes) > SIZES_KEPT:
                    self._sizes.popitem(last=False)
        return known
