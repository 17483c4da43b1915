"""``fsck --deep`` said "no problems" of a materialised version by reference whose copy in ``files/md5/`` was
corrupt: fsck skips every file of a version by reference (its files are its source's), so the copies that
``materialize`` made (and that ``export``'s ``.dvc`` sends plain DVC to) are never hashed. Once the source is
gone, a pull fails, and a ``dvc pull`` of the export gets the bad bytes. Found by the hostile pass over versions
by reference (issue 18).

Fixed with fsck's check of references: a file of a version by reference that ``files/md5/`` holds (materialised)
is checked as any object the store needs (``hash_mismatch`` when corrupt), and only the others are its source's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import write_tree

from gitfree import Store
from gitfree.versioning import layout


def test_fsck_deep_finds_a_corrupt_materialized_copy(make_store: Callable[..., Store], tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"the bytes of a", "b.txt": b"the bytes of b"})
    store = make_store("file")
    version = store.commit("ds", src, by_reference=True)
    store.materialize(version)
    md5 = next(e.md5 for e in store.files(version) if e.path == "a.txt")
    path = Path(store.url.removeprefix("file://")) / layout.object_key(md5)
    path.write_bytes(b"not the bytes of a")
    report = make_store("file").fsck(deep=True)
    assert [(p.kind, p.key) for p in report.problems] == [("hash_mismatch", layout.object_key(md5))]
