"""Lineage: what a version was made from, what was made from it, what is out of date, and the reverse edges.

Upstream follows each record's ``inputs``, into other stores when an input names one. Downstream never
scans the store: a commit writes, after its record, one create-only reverse edge per input
(``datasets/<input>/used-by/<n>/<dataset>@<m>.json``), so "what was made from ``raw@12``" is one LIST
of one prefix, plus the records of what it names, read in parallel. An edge is a hint: it counts only if
the record it names (a version, or the tombstone of a dropped one) names that input. ``reindex``
writes the edges of versions committed before edges existed (or whose edge write failed) and removes
those that do not hold; garbage collection removes the edges of the versions it drops (docs/design.md,
"Lineage").
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from .backends import KeyMissing
from .catalog import Catalog, Inventory
from .errors import GitfreeError
from .models import Dropped, InputRef, Lineage, LineageEdge, LineageNode, ReindexReport, StaleVersion, Version

__all__ = ["Opener", "graph", "reindex", "stale"]

logger = logging.getLogger("gitfree")

Opener = Callable[[str], Catalog]
"""Opens the catalog of another store by URL (with the same settings); raises ``GitfreeError`` if it cannot."""

Direction = Literal["up", "down", "both"]

_STALE_JOBS = 16


@dataclass
class _Stores:
    """The catalogs lineage has opened, by URL: the one asked about first; others on demand, once each."""

    root: Catalog
    opener: Opener
    opened: dict[str, Catalog | str] = field(default_factory=dict)
    """URL -> its catalog, or why it could not be opened."""

    def catalog(self, url: str | None, within: Catalog) -> Catalog | str:
        """The catalog an input's ``store`` names, relative to the catalog of the version naming it."""
        if within.same_store(url):
            return within
        assert url is not None  # noqa: S101 - same_store(None) is true
        key = url.rstrip("/")
        if self.root.same_store(key):
            return self.root
        if key not in self.opened:
            try:
                self.opened[key] = self.opener(url)
            except GitfreeError as exc:
                self.opened[key] = f"the store {url} cannot be opened: {exc}"
        return self.opened[key]


class _Graph:
    """Nodes and edges as they are found; node ids are refs in the root store, ``URL#ref`` elsewhere."""

    def __init__(self, stores: _Stores) -> None:
        self.stores = stores
        self.nodes: dict[str, LineageNode] = {}
        self.edges: set[tuple[str, str]] = set()

    def node_id(self, catalog_url: str, dataset: str, number: int) -> str:
        ref = f"{dataset}@{number}"
        return ref if self.stores.root.same_store(catalog_url) else f"{catalog_url}#{ref}"

    def add(self, url: str, record: Version | Dropped) -> str:
        node_id = self.node_id(url, record.dataset, record.number)
        if isinstance(record, Version):
            node = LineageNode(
                id=node_id,
                ref=record.ref,
                dataset=record.dataset,
                number=record.number,
                store=url,
                created_at=record.created_at,
                author=record.author,
                message=record.message,
            )
        else:
            node = LineageNode(
                id=node_id,
                ref=record.ref,
                dataset=record.dataset,
                number=record.number,
                store=url,
                created_at=record.created_at,
                dropped=True,
                note=f"dropped by garbage collection on {record.dropped_at:%Y-%m-%d %H:%M} UTC",
            )
        self.nodes.setdefault(node_id, node)
        return node_id

    def external(self, url: str, ref: InputRef, note: str) -> str:
        node_id = self.node_id(url, ref.dataset, ref.number)
        self.nodes.setdefault(
            node_id,
            LineageNode(
                id=node_id, ref=str(ref), dataset=ref.dataset, number=ref.number, store=url, external=True, note=note
            ),
        )
        return node_id


def graph(catalog: Catalog, root: Version, direction: Direction, depth: int | None, opener: Opener) -> Lineage:
    """See :meth:`.Store.lineage`."""
    found = _Graph(_Stores(catalog, opener))
    root_id = found.add(catalog.url, root)
    if direction in ("up", "both"):
        _upstream(found, catalog, root, depth)
    if direction in ("down", "both"):
        _downstream(found, catalog, root, depth)
    return Lineage(
        root=root_id,
        store=catalog.url,
        direction=direction,
        depth=depth,
        nodes=list(found.nodes.values()),  # as found: the root, then hop by hop
        edges=[LineageEdge(source=s, target=t) for s, t in sorted(found.edges)],
    )


def _upstream(found: _Graph, catalog: Catalog, root: Version, depth: int | None) -> None:
    queue: deque[tuple[Catalog, Version | Dropped, int]] = deque([(catalog, root, 0)])
    seen = {found.node_id(catalog.url, root.dataset, root.number)}
    while queue:
        within, record, level = queue.popleft()
        if depth is not None and level >= depth:
            continue
        target = found.node_id(within.url, record.dataset, record.number)
        for ref in record.inputs:
            holder = found.stores.catalog(ref.store, within)
            url = holder.url if isinstance(holder, Catalog) else (ref.store or within.url)
            source = found.node_id(url, ref.dataset, ref.number)
            found.edges.add((source, target))
            if source in seen:
                continue
            seen.add(source)
            if isinstance(holder, str):
                found.external(url, ref, holder)
                continue
            try:
                parent = holder.record(ref.dataset, ref.number)
            except KeyMissing:
                found.external(url, ref, f"{ref} does not exist in {url}")
                continue
            except GitfreeError as exc:  # unreadable record, or the store stopped answering
                found.external(url, ref, str(exc))
                continue
            found.add(url, parent)
            queue.append((holder, parent, level + 1))


def _downstream(found: _Graph, catalog: Catalog, root: Version, depth: int | None) -> None:
    """Breadth first over the reverse edges in this store; each level: one LIST per version, then the
    records they name, in parallel."""
    level = [(root.dataset, root.number)]
    seen = set(level)
    hops = 0
    while level and (depth is None or hops < depth):
        hops += 1
        named = {(ds, n): catalog.consumers(ds, n) for ds, n in level}
        records = catalog.records_at({c for consumers in named.values() for c in consumers})
        following = []
        for (ds, n), consumers in named.items():
            source = found.node_id(catalog.url, ds, n)
            for consumer in consumers:
                record = records.get(consumer)
                if record is None or not catalog.made_from(record, ds, n):
                    continue  # a stale or forged edge: fsck reports it, reindex removes it
                found.edges.add((source, found.add(catalog.url, record)))
                if consumer not in seen:
                    seen.add(consumer)
                    following.append(consumer)
        level = following


def stale(catalog: Catalog, datasets: Iterable[str], opener: Opener) -> list[StaleVersion]:
    """See :meth:`.Store.stale`."""
    stores = _Stores(catalog, opener)
    names = sorted(set(datasets)) or catalog.datasets()
    with ThreadPoolExecutor(max_workers=_STALE_JOBS) as pool:
        heads = dict(zip(names, pool.map(catalog.head, names), strict=True))
        wanted = {
            (ref.store, ref.dataset): ref
            for head in heads.values()
            if head is not None
            for ref in head.inputs
            if not isinstance(stores.catalog(ref.store, catalog), str)
        }
        newest = dict(zip(wanted, pool.map(lambda key: _head(stores, catalog, *key), wanted), strict=True))
        used = [(ref, head) for head in heads.values() if head is not None for ref in head.inputs]
        judged = list(pool.map(lambda pair: _judge(stores, catalog, newest, *pair), used))
    return sorted((s for s in judged if s is not None), key=lambda s: (s.ref, s.input))


def _head(stores: _Stores, catalog: Catalog, store: str | None, dataset: str) -> Version | None:
    holder = stores.catalog(store, catalog)
    if isinstance(holder, str):
        return None
    try:
        return holder.head(dataset)
    except GitfreeError as exc:
        logger.warning("stale: the newest version of %s cannot be read: %s", dataset, exc)
        return None


def _judge(
    stores: _Stores,
    catalog: Catalog,
    newest: dict[tuple[str | None, str], Version | None],
    ref: InputRef,
    head: Version,
) -> StaleVersion | None:
    """Whether ``head`` was made from an older ``ref`` than its dataset's newest, with other content (a
    newer version with the same data, as ``dvc status`` would say, is not a change)."""
    now = newest.get((ref.store, ref.dataset))
    if now is None or now.number <= ref.number:
        return None
    holder = stores.catalog(ref.store, catalog)
    assert isinstance(holder, Catalog)  # noqa: S101 - else newest holds None for it
    used: Version | Dropped | None
    try:
        used = holder.record(ref.dataset, ref.number)
    except (KeyMissing, GitfreeError):
        used = None
    if used is not None and used.md5 == now.md5:
        return None
    return StaleVersion(
        ref=head.ref,
        input=str(ref),
        input_store=None if catalog.same_store(ref.store) else ref.store,
        newest=now.ref,
    )


def reindex(catalog: Catalog, datasets: Iterable[str] = (), *, dry_run: bool = False) -> ReindexReport:
    """See :meth:`.Store.reindex`."""
    inventory = catalog.inventory(datasets, journals=False)
    missing, orphans, expected = edge_problems(catalog, inventory)
    if not dry_run:
        catalog.ensure_writable()
        for key, version in missing.items():
            try:
                catalog.write_edges(version)
            except (GitfreeError, KeyMissing) as exc:
                logger.warning("reindex: could not write %s: %s", key, exc)
                missing = {k: v for k, v in missing.items() if k != key}
        catalog.backend.delete_many(orphans)
    versions = sum(len(e.versions) + len(e.dropped) for e in inventory.datasets.values())
    return ReindexReport(versions=versions, edges=expected, written=sorted(missing), removed=sorted(orphans))


def edge_problems(catalog: Catalog, inventory: Inventory) -> tuple[dict[str, Version], list[str], int]:
    """The reverse edges that should be there and are not (key -> the version whose edge it is), those
    there that do not hold (their consumer does not exist or does not name that input), and how many
    should be there. The edge of a dropped version holds (its tombstone names its inputs): garbage
    collection removes it once nothing kept is reached through it. An edge that looks orphaned is judged on
    its record read again, so a commit that landed after the inventory's listing is not mistaken for a
    forgery."""
    missing: dict[str, Version] = {}
    expected: set[str] = set()
    for entry in inventory.datasets.values():
        for version in entry.versions.values():
            for key in catalog.edge_keys(version):
                expected.add(key)
                if key not in inventory.edges:
                    missing[key] = version
    suspects = {key: edge for key, edge in inventory.edges.items() if key not in expected}
    records = catalog.records_at({edge[2:] for edge in suspects.values()})
    orphans = []
    for key, (name, number, consumer, consumer_number) in suspects.items():
        record = records.get((consumer, consumer_number))
        if record is None or not catalog.made_from(record, name, number):
            if record is None and _unreadable(inventory, consumer, consumer_number):
                continue  # an unreadable record may name it: fsck reports the record, not the edge
            orphans.append(key)
    return missing, sorted(orphans), len(expected)


def _unreadable(inventory: Inventory, dataset: str, number: int) -> bool:
    entry = inventory.datasets.get(dataset)
    return entry is not None and number in entry.unreadable
