"""Helpers of the web view's tests: a store with something of everything, the app served by a real uvicorn on a
free port, raw HTTP (no client normalising ``..``), a listing of every key of a store, and the text a person
sees in a page."""

from __future__ import annotations

import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import uvicorn
from helpers import write_tree
from starlette.applications import Starlette

from gitfree import Author, Store
from gitfree.ui.server import listen

HOSTILE_FILE = "<img src=x onerror=alert(1)>.csv"
HOSTILE_MESSAGE = "<script>window.__xss=1</script>"
HOSTILE_LINK = "javascript:alert(1)"
HOSTILE_CELL = "<b>x</b>"
HOSTILE_METRIC = "acc<b>"
RUN_ID = "5d1e9f3c-0000-4000-8000-00000000beef"


def build(store: Store, work: Path) -> dict[str, str]:
    """Commit a small world into ``store``: nested datasets (``raw/sales``, ``raw/stores``, ``features``,
    ``models/churn``), several versions with metrics, tags moved and deleted, lineage (raw/sales@3 ->
    features@1 -> models/churn@1), a version made in a Prefect flow run, and hostile names and values."""
    src = work / "src-sales"
    files = {
        "2026/01.csv": b"day,amount\n1,10\n",
        "2026/02.csv": b"day,amount\n1,20\n",
        "README.md": b"# sales\n",
        HOSTILE_FILE: f"name,html\nx,{HOSTILE_CELL}\n".encode(),
    }
    write_tree(src, files)
    store.commit(
        "raw/sales",
        src,
        message=HOSTILE_MESSAGE,
        metadata={"source": HOSTILE_LINK, "owner": "ana"},
        metrics={"rows": 2, HOSTILE_METRIC: 0.5},
    )
    (src / "2026/02.csv").write_bytes(b"day,amount\n1,20\n2,25\n")
    store.commit("raw/sales", src, message="february grew", metrics={"rows": 3, HOSTILE_METRIC: 0.6})
    (src / "README.md").unlink()
    write_tree(src, {"2026/03.csv": b"day,amount\n1,30\n", "page.html": b"<script>alert(2)</script>"})
    prefect = Author(user="ana", host="ws1", orchestrator="prefect", pipeline="ingest", run_id=RUN_ID, task_id="t1")
    store.commit("raw/sales", src, message="march", metrics={"rows": 4, HOSTILE_METRIC: 0.7}, author=prefect)
    store.tag("raw/sales@1", "prod", message="first release")
    store.tag("raw/sales@3", "prod", move=True, message="march release")
    store.tag("raw/sales@2", "old")
    store.untag("raw/sales", "old", message="not needed")
    write_tree(work / "src-stores", {"stores.json": b'{"stores": [1, 2]}'})
    store.commit("raw/stores", work / "src-stores", message="the stores")
    write_tree(work / "src-features", {"features.csv": b"a,b\n1,2\n"})
    store.commit("features", work / "src-features", inputs=["raw/sales@3", "raw/stores@1"], message="features")
    write_tree(work / "src-model", {"model.bin": b"\x00\x01weights"})
    store.commit("models/churn", work / "src-model", inputs=["features@1"], metrics={"auc": 0.81}, message="model")
    return {"dataset": "raw/sales", "head": "raw/sales@3"}


@dataclass
class Served:
    """A web view served by uvicorn in a thread, on 127.0.0.1 and a free port."""

    url: str
    server: uvicorn.Server

    def client(self, **options: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **options)  # type: ignore[arg-type]


@contextmanager
def serve(app: Starlette) -> Iterator[Served]:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web view did not start")
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


def raw_request(url: str, target: str, method: str = "GET", headers: dict[str, str] | None = None) -> RawResponse:
    """One HTTP/1.1 request sent as written: ``target`` reaches the server byte for byte (``..`` and ``%2f``
    unnormalised, as a hostile client sends them)."""
    host, port = url.removeprefix("http://").split(":")
    sent = {"Host": f"{host}:{port}", "Connection": "close", **(headers or {})}
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in sent.items()]
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), parsed, body)


def keys_and_etags(store: Store) -> dict[str, tuple[str | None, int, float]]:
    """Every key of the store with its ETag, size and modification time: what a write would change."""
    return {info.key: (info.etag, info.size, info.modified.timestamp()) for info in store.backend.scan("")}


_APART = frozenset(
    {"a", "button", "code", "div", "h1", "h2", "h3", "header", "label", "li", "nav", "option", "p", "pre", "section"}
    | {"strong", "table", "td", "th", "time", "tr"}
)
"""Elements a person reads as separate words, whatever whitespace the HTML has between them."""


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hrefs: list[str] = []
        self.actions: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _APART:
            self.parts.append(" ")
        if tag in ("script", "style", "title"):
            self.skip += 1
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.hrefs.append(value)
            elif name == "action" and value is not None:
                self.actions.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in _APART:
            self.parts.append(" ")
        if tag in ("script", "style", "title"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def seen(page: str) -> str:
    """The text a person reads on ``page``, whitespace collapsed."""
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def links(page: str, *, actions: bool = True) -> list[str]:
    """Every ``href`` and ``src`` of ``page`` (and form ``action``, unless told not to), unescaped."""
    parser = _Text()
    parser.feed(page)
    return [html.unescape(h) for h in parser.hrefs + (parser.actions if actions else [])]


def title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    return html.unescape(found[1]).strip() if found else ""
