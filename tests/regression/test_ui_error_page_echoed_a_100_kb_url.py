"""An error page quoted the URL it could not serve, whole: ``/d/`` and 100 KB of ``a`` came back as a page of
100 KB, the hostile URL echoed whole (escaped, but as many bytes back as were sent, each time). The
line an error page shows is now at most 1000 characters, cut with an ellipsis."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import write_tree
from ui.ui_helpers import raw_request, serve

from gitfree import Store
from gitfree.ui import create_app


def test_a_huge_url_is_not_echoed_whole(tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {"a.csv": b"a\n1\n"})
    store = Store(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    store.commit("raw/sales", tmp_path / "src", message="one")
    with serve(create_app(store)) as site:
        response = raw_request(site.url, "/d/" + "a" * 100_000)
    assert response.status_code == 404
    assert len(response.body) < 8000
    line = re.search(r'role="alert">(.*?)</p>', response.body.decode(), re.S)
    assert line is not None and line[1].startswith("/d/aaaa") and line[1].endswith("…") and len(line[1]) == 1001
