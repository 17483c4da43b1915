"""A stored file whose name holds a line break (``a\\r\\nX-Evil: 1.csv``, which gitfree commits) was listed
on its version's page with a link that answered "there is nothing at this address": Starlette's ``path``
parameter does not match a line break. Its preview and its download now work, and the name reaches the
download's ``Content-Disposition`` only encoded (no header can be injected through it)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from helpers import write_tree
from ui.ui_helpers import links, seen, serve

from gitfree import Store
from gitfree.ui import create_app

NAME = "a\r\nX-Evil: 1.bin"


def test_a_file_named_with_a_line_break_is_shown_and_downloaded(tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {NAME: b"<script>alert(1)</script>", "plain.csv": b"a\n1\n"})
    writer = Store(str(tmp_path / "store"), cache_dir=tmp_path / "cache-w")
    writer.commit("raw/odd", tmp_path / "src", message="odd names")
    with serve(create_app(Store(writer.url, cache_dir=tmp_path / "cache-r"))) as site, site.client() as client:
        page = client.get("/v/raw/odd@1").text
        link = f"/v/raw/odd@1/-/files/{quote(NAME, safe='/')}"
        assert link in links(page)
        preview = client.get(link)
        assert preview.status_code == 200 and "X-Evil: 1.bin" in seen(preview.text)
        raw = client.get(f"/v/raw/odd@1/-/raw/{quote(NAME, safe='/')}")
        assert raw.status_code == 200 and raw.content == b"<script>alert(1)</script>"
        assert "x-evil" not in raw.headers
        assert raw.headers["content-type"] == "application/octet-stream"
        assert raw.headers["content-disposition"] == (
            "attachment; filename=\"a__X-Evil__1.bin\"; filename*=UTF-8''a%0D%0AX-Evil%3A%201.bin"
        )
        assert raw.headers["x-content-type-options"] == "nosniff"
