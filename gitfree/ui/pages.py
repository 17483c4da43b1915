"""What each page of the web view shows, read from the store: one function per page, returning the
template's context. Only the records a page shows are read (docs/design.md, "The web view"): a page of the
history reads its 50 records, a page of the datasets their heads and tags, a folder of a version its entries
from the listing's index.
"""

from __future__ import annotations

import difflib
import math
import shlex
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from gitfree.versioning import (
    Author,
    DiffEntry,
    GitfreeError,
    InputError,
    Lineage,
    LineageNode,
    MetricsDiff,
    NotFoundError,
    Store,
    Tag,
    Version,
)

from .listing import Listings
from .urls import Urls, not_found

__all__ = [
    "DATASETS_PER_PAGE",
    "FILES_PER_PAGE",
    "HISTORY_PER_PAGE",
    "Pages",
    "RunLinks",
    "audit_page",
    "datasets_page",
    "diff_page",
    "history_page",
    "public_url",
    "version_page",
]

DATASETS_PER_PAGE = 50
HISTORY_PER_PAGE = 50
FILES_PER_PAGE = 200
AUDIT_PER_PAGE = 100
DIFF_PER_PAGE = 500
TEXT_DIFF_MAX = 64 * 1024
"""A changed file is shown as a line diff when both sides are text of at most 64 KiB..."""
TEXT_DIFFS = 20
"""...for at most 20 files of a diff."""
DIFF_LINES = 2000
"""The most lines of one file's line diff."""
METRIC_COLUMNS = 3
"""Metrics shown in the history when none are chosen (``?metrics=a,b``)."""
_READ_JOBS = 16


# ---------------------------------------------------------------------------- small parts


@dataclass(frozen=True)
class Pages:
    """Page ``page`` (from 1) of ``total`` items, ``size`` a page."""

    page: int
    size: int
    total: int

    @property
    def last(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def start(self) -> int:
        return (self.page - 1) * self.size

    @property
    def stop(self) -> int:
        return self.start + self.size

    @classmethod
    def checked(cls, page: int, size: int, total: int) -> Pages:
        pages = cls(page, size, total)
        if page > pages.last:
            raise not_found(f"there is no page {page}: the last page is {pages.last}")
        return pages


@dataclass(frozen=True)
class RunLinks:
    """Where an author's orchestrator run is shown: the Prefect UI's flow run, the Airflow UI's DAG run."""

    prefect: str | None = None
    airflow: str | None = None

    def of(self, author: Author | None) -> str | None:
        if author is None or not author.run_id:
            return None
        run = quote(author.run_id, safe="")
        # Joined from segments: these are the orchestrators' URLs, not store keys (which layout.py spells).
        if author.orchestrator == "prefect" and self.prefect:
            return "/".join((self.prefect, "runs", "flow-run", run))
        if author.orchestrator == "airflow" and self.airflow and author.pipeline:
            return "/".join((self.airflow, "dags", quote(author.pipeline, safe=""), "runs", run))
        return None


def checked_ui_url(url: str | None, what: str) -> str | None:
    """An orchestrator UI's URL: ``http(s)://HOST[/PATH]`` without credentials, or ``InputError``."""
    if url is None or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise InputError(
            f"{what} must be an http:// or https:// URL of its UI, with no user or password in it (got {url!r})"
        )
    return url.strip().rstrip("/")


def public_url(url: str) -> str:
    """The store's URL as pages show it: anything like ``user:password@`` before its host is left out."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return url


def _parallel(fn: Callable[[str], Any], names: Sequence[str]) -> list[Any]:
    if len(names) <= 1:
        return [fn(n) for n in names]
    with ThreadPoolExecutor(max_workers=min(_READ_JOBS, len(names))) as pool:
        return list(pool.map(fn, names))


def _tags_by_number(tags: Iterable[Tag]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for tag in tags:
        found.setdefault(tag.number, []).append(tag.tag)
    return found


# ---------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetRow:
    name: str
    prefix: str
    leaf: str
    head: Version | None
    tags: list[str]


def datasets_page(store: Store, query: str, page: int) -> dict[str, Any]:
    """The datasets whose name holds ``query``, 50 a page, each with its newest version and its tags."""
    names = store.datasets()
    wanted = query.strip().lower()
    matching = [n for n in names if wanted in n] if wanted else names
    pages = Pages.checked(page, DATASETS_PER_PAGE, len(matching))
    shown = matching[pages.start : pages.stop]
    heads = store.heads(shown)
    tags = _parallel(lambda n: [t.tag for t in store.tags(n)], shown)
    rows = []
    for name, names_of_tags in zip(shown, tags, strict=True):
        prefix, _, leaf = name.rpartition("/")
        rows.append(DatasetRow(name, f"{prefix}/" if prefix else "", leaf, heads.get(name), names_of_tags))
    return {"rows": rows, "pages": pages, "query": query, "total": len(names), "matching": len(matching)}


# ---------------------------------------------------------------------------- history


def chosen_metrics(param: str | None, versions: Sequence[Version]) -> list[str]:
    """The metrics the history shows: those of ``?metrics=a,b``, else the first few the page's versions have."""
    if param:
        return [n.strip() for n in param.split(",") if n.strip()][:12]
    seen: dict[str, None] = {}
    for version in versions:
        for name in version.metrics:
            seen.setdefault(name, None)
    return list(seen)[:METRIC_COLUMNS]


def history_page(store: Store, dataset: str, page: int, metrics: str | None) -> dict[str, Any]:
    """The versions of ``dataset``, newest first, 50 a page: page N holds the versions numbered in the N-th
    window of 50 below the newest (so a page's URL keeps its versions while versions are dropped)."""
    if page == 1:
        versions = store.log(dataset, limit=HISTORY_PER_PAGE)
        top = versions[0].number if versions else 0
    else:
        head = store.show(dataset)
        top = head.number
        Pages.checked(page, HISTORY_PER_PAGE, top)
        ceiling = top - (page - 1) * HISTORY_PER_PAGE
        floor = ceiling - HISTORY_PER_PAGE
        versions = [v for v in store.log(dataset, HISTORY_PER_PAGE, before=ceiling + 1) if v.number > floor]
    pages = Pages(page, HISTORY_PER_PAGE, top)
    tags = store.tags(dataset)
    return {
        "dataset": dataset,
        "versions": versions,
        "pages": pages,
        "tags": _tags_by_number(tags),
        "metrics": chosen_metrics(metrics, versions),
        "head": top,
    }


# ---------------------------------------------------------------------------- a version


@dataclass
class Neighbour:
    node: LineageNode
    href: str | None
    state: str


def linked_node(node: LineageNode, lineage: Lineage, urls: Urls) -> Neighbour:
    """A lineage node with the link to its page: only a version of this store that still exists has one."""
    if node.external:
        return Neighbour(node, None, "unreadable")
    if node.store != lineage.store:
        return Neighbour(node, None, f"in {public_url(node.store)}")
    if node.dropped:
        return Neighbour(node, None, "dropped")
    return Neighbour(node, urls.version(node.dataset, node.number), "")


def neighbours(store: Store, version: Version, urls: Urls) -> tuple[list[Neighbour], list[Neighbour]]:
    """The versions ``version`` was made from and those made from it, one hop each way."""
    lineage = store.lineage(version, "both", depth=1)
    inputs = [linked_node(lineage.node(i), lineage, urls) for i in lineage.inputs_of(lineage.root)]
    consumers = [linked_node(lineage.node(i), lineage, urls) for i in lineage.consumers_of(lineage.root)]
    return inputs, consumers


def parent_metrics(store: Store, version: Version) -> tuple[MetricsDiff | None, str]:
    """The metrics of ``version`` against its parent's, or why there are no deltas."""
    if not version.parent:
        return None, "the first version: no deltas"
    try:
        parent = store.show(f"{version.dataset}@{version.parent}")
    except NotFoundError as exc:
        return None, f"no deltas: {str(exc).split(';')[0]}"
    return store.compare(parent, version), ""


def commands(store: Store, version: Version) -> dict[str, str]:
    """Lines to copy: the CLI's pull, the Python call and the fsspec URL (the store's URL has no credentials)."""
    url = public_url(store.url)
    return {
        "cli": f"gitfree --store {shlex.quote(url)} pull {version.ref} DEST",
        "python": f"from gitfree import Store; Store({url!r}).pull({version.ref!r}, 'DEST')",
        "fsspec": f"gitfree://{version.ref}/",
    }


def version_page(
    store: Store, version: Version, folder: str, page: int, listings: Listings, urls: Urls
) -> dict[str, Any]:
    """A version: its record, metrics with deltas, lineage neighbours, tags and their moves, and one page
    (200 entries) of one folder of its files."""
    index = listings.index(store, version)
    if not index.is_folder(folder):
        raise not_found(f"{version.ref} has no folder {folder!r}")
    pages = Pages.checked(page, FILES_PER_PAGE, index.count(folder))
    children = index.children(folder, pages.start, pages.stop)
    sizes = listings.sizes(store, [c.entry for c in children if c.entry is not None])
    deltas, no_deltas = parent_metrics(store, version)
    inputs, consumers = neighbours(store, version, urls)
    tags = [t for t in store.tags(version.dataset) if t.number == version.number]
    return {
        "version": version,
        "folder": folder,
        "folders": _folder_links(version, folder, urls),
        "children": children,
        "sizes": sizes,
        "pages": pages,
        "files": index.size,
        "deltas": deltas,
        "no_deltas": no_deltas,
        "inputs": inputs,
        "consumers": consumers,
        "tags": tags,
        "events": store.tag_events(version.dataset, version.number),
        "commands": commands(store, version),
    }


def _folder_links(version: Version, folder: str, urls: Urls) -> list[tuple[str, str]]:
    """The breadcrumbs of ``folder``: each enclosing folder's name and link."""
    parts = folder.split("/") if folder else []
    return [
        (part, urls.version(version.dataset, version.number, path="/".join(parts[: i + 1])))
        for i, part in enumerate(parts)
    ]


# ---------------------------------------------------------------------------- diff and audit


@dataclass
class TextDiff:
    path: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    """(kind, text): kind is ``add``, ``del``, ``hunk`` or ``ctx``."""
    cut: bool = False


def _text(store: Store, version: Version, path: str) -> str | None:
    with store.open(version, path) as f:
        data = f.read(TEXT_DIFF_MAX + 1)
    if len(data) > TEXT_DIFF_MAX or b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def text_diff(store: Store, old: Version, new: Version, entry: DiffEntry) -> TextDiff | None:
    """The line diff of a modified file whose two sides are UTF-8 text of at most 64 KiB, else ``None``."""
    if (entry.old_size or 0) > TEXT_DIFF_MAX or (entry.new_size or 0) > TEXT_DIFF_MAX:
        return None
    before, after = _text(store, old, entry.path), _text(store, new, entry.path)
    if before is None or after is None:
        return None
    out = TextDiff(entry.path)
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3)
    for n, line in enumerate(lines):
        if n < 2:
            continue  # the ---/+++ header: the page names both versions
        if n >= DIFF_LINES + 2:
            out.cut = True
            break
        kind = "hunk" if line.startswith("@@") else "add" if line[:1] == "+" else "del" if line[:1] == "-" else "ctx"
        out.lines.append((kind, line))
    return out


def diff_page(store: Store, dataset: str, old: str, new: str, page: int) -> dict[str, Any]:
    """Files added, removed and modified from ``dataset@old`` to ``dataset@new``, metric deltas, and the line
    diff of up to 20 changed text files of at most 64 KiB."""
    a, b = store.show(f"{dataset}@{old}"), store.show(f"{dataset}@{new}")
    diff = store.diff(a, b)
    pages = Pages.checked(page, DIFF_PER_PAGE, len(diff.entries))
    shown = diff.entries[pages.start : pages.stop]
    texts: list[TextDiff] = []
    for entry in diff.modified:
        if len(texts) >= TEXT_DIFFS:
            break
        found = text_diff(store, a, b, entry)
        if found is not None:
            texts.append(found)
    return {
        "dataset": dataset,
        "old": a,
        "new": b,
        "diff": diff,
        "entries": shown,
        "pages": pages,
        "metrics": store.compare(a, b),
        "texts": texts,
    }


def audit_page(store: Store, dataset: str, page: int) -> dict[str, Any]:
    """The timeline of ``dataset``: commits, drops and tag writes, newest first, 100 a page."""
    events = store.audit(dataset)
    pages = Pages.checked(page, AUDIT_PER_PAGE, len(events))
    return {"dataset": dataset, "events": events[pages.start : pages.stop], "pages": pages}


def safe_message(exc: GitfreeError) -> str:
    """The one line the CLI would print for ``exc``."""
    return " ".join(part.strip() for part in exc.in_cli_terms().splitlines() if part.strip())
