"""The web view over a version by reference (docs/design.md, "Versions by reference"): its pages and files are
read from the source like any version's; its ``.dvc`` download is refused in one line."""

from __future__ import annotations

from pathlib import Path

from helpers import write_tree
from ui.ui_helpers import serve

from gitfree import Store
from gitfree.ui import create_app


def test_the_web_view_shows_and_serves_a_version_by_reference(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "shared" / "data", {"a.csv": b"x,y\n1,2\n", "d/b.txt": b"hello b"})
    Store(tmp_path / "store", cache_dir=tmp_path / "writer").commit("images", source, by_reference=True)
    with serve(create_app(Store(tmp_path / "store", cache_dir=tmp_path / "server"))) as site, site.client() as web:
        page = web.get("/v/images@1")
        assert page.status_code == 200 and "a.csv" in page.text
        assert web.get("/v/images@1/-/raw/d/b.txt").content == b"hello b"
        assert web.get("/v/images@1/-/files/a.csv").status_code == 200
        refused = web.get("/v/images@1/-/dvc")
        assert refused.status_code == 400 and "versioned by reference" in refused.text, refused.status_code
