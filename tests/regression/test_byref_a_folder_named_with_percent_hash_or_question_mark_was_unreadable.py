"""A shared folder whose path holds ``%``, ``#`` or ``?`` (``/data/q?raw``, ``/data/100%41``) committed by reference
fine, but its table recorded ``file:///data/q?raw/`` as it is, and every reader parses that URL again: ``?`` and
``#`` cut the path (``/data/q``: "it no longer exists"), ``%41`` became ``A`` (another folder: "it is another
file"). The version could never be read, fsck called it drifted, and a pull --overwrite into the real folder was
not refused (R8: the guard looked at the other path). Now those three characters are escaped in the URL.
Found by the second hostile pass over issue 18."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import InputError, Store


@pytest.mark.parametrize("name", ["pct%41dir", "hash#dir", "q?dir", "all %20#?%"])
def test_a_folder_named_with_url_characters_is_read_checked_and_guarded(
    name: str, make_store: Callable[..., Store], tmp_path: Path
) -> None:
    src = write_tree(tmp_path / name, {"x.txt": b"the right bytes"})
    write_tree(tmp_path / "pctAdir", {"x.txt": b"another folder"})  # what %41 unquoted to
    make_store("file").commit("ds", src, by_reference=True)
    reader = make_store("file")
    assert reader.open("ds", "x.txt").read() == b"the right bytes"
    assert reader.fsck().problems == []
    with pytest.raises(InputError, match=r"the folder ds@1 is versioned by reference from"):
        reader.pull("ds", src, overwrite=True)
    assert (src / "x.txt").read_bytes() == b"the right bytes"
