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
import socket
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, cast

from .backends import KeyMissing
from .catalog import Catalog, Inventory
from .errors import ConfigError, GitfreeError, InputError, NotFoundError
from .models import (
    Dropped,
    InputRef,
    Lineage,
    LineageEdge,
    LineageNode,
    ReindexReport,
    RunNote,
    StaleVersion,
    Version,
    utcnow,
)
from .refs import validate_dataset_name

__all__ = ["RUN_MAX", "Opener", "checked_run", "graph", "input_of", "note_use", "reindex", "stale", "used_in"]

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
        self.more: set[str] = set()
        """Nodes at the depth limit whose own inputs were not followed."""

    def node_id(self, catalog_url: str, dataset: str, number: int) -> str:
        ref = f"{dataset}@{number}"
        return ref if self.stores.root.same_store(catalog_url) else f"{catalog_url}#{ref}"

    def add(self, url: str, record: Version | Dropped) -> str:
        node_id = self.node_id(url, record.dataset, record.number)
        node = LineageNode(
            id=node_id,
            ref=record.ref,
            dataset=record.dataset,
            number=record.number,
            store=url,
            created_at=record.created_at,
        )
        if isinstance(record, Version):
            node = node.model_copy(update={"author": record.author, "message": record.message})
        else:
            note = f"dropped by garbage collection on {record.dropped_at:%Y-%m-%d %H:%M} UTC"
            node = node.model_copy(update={"dropped": True, "note": note})
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


def graph(catalog: Catalog, root: Version, direction: str, depth: int | None, opener: Opener) -> Lineage:
    """See :meth:`.Store.lineage`."""
    if direction not in ("up", "down", "both"):
        raise InputError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise InputError(f"depth must be a whole number of 0 or more, not {depth!r}")
    found = _Graph(_Stores(catalog, opener))
    root_id = found.add(catalog.url, root)
    if direction in ("up", "both"):
        _upstream(found, catalog, root, depth)
    if direction in ("down", "both"):
        _downstream(found, catalog, root, depth)
    return Lineage(
        root=root_id,
        store=catalog.url,
        direction=cast(Direction, direction),
        depth=depth,
        nodes=[  # as found: the root, then hop by hop
            n.model_copy(update={"more": True}) if n.id in found.more else n for n in found.nodes.values()
        ],
        edges=[LineageEdge(source=s, target=t) for s, t in sorted(found.edges)],
    )


def _upstream(found: _Graph, catalog: Catalog, root: Version, depth: int | None) -> None:
    queue: deque[tuple[Catalog, Version | Dropped, int]] = deque([(catalog, root, 0)])
    seen = {found.node_id(catalog.url, root.dataset, root.number)}
    if depth == 0 and root.inputs:
        found.more.add(found.node_id(catalog.url, root.dataset, root.number))
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
            except ConfigError as exc:  # the store stopped answering: the rest of it is not waited for
                found.external(url, ref, str(exc))
                if holder is not catalog:
                    found.stores.opened[url.rstrip("/")] = f"the store {url} did not answer: {exc}"
                continue
            except GitfreeError as exc:  # an unreadable record
                found.external(url, ref, str(exc))
                continue
            if depth is not None and level + 1 >= depth and parent.inputs:
                found.more.add(source)
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
        records, _ = catalog.records_at({c for consumers in named.values() for c in consumers})
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
    names = _checked_names(datasets)
    known = set(catalog.datasets()) if names else set()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise catalog.not_found_dataset(unknown[0])
    stores = _Stores(catalog, opener)
    names = sorted(set(names)) or catalog.datasets()
    heads = [h for h in catalog.heads(names).values() if h is not None]  # three rounds of parallel reads
    used = [(head, holder, ref) for head in heads for holder, ref in _used(stores, catalog, head)]
    wanted = {_key(holder, ref): holder for _, holder, ref in used}
    here = {key[1] for key, holder in wanted.items() if holder is catalog}
    newest: dict[tuple[str, str], Version | str | None] = {
        (catalog.url, name): head for name, head in catalog.heads(here).items()
    }
    with ThreadPoolExecutor(max_workers=_STALE_JOBS) as pool:
        others = [key for key, holder in wanted.items() if holder is not catalog]
        newest.update(zip(others, pool.map(lambda key: _head(wanted[key], key[1]), others), strict=True))
        judged = list(pool.map(lambda item: _judge(catalog, newest, *item), used))
    return sorted((s for s in judged if s is not None), key=lambda s: (s.ref, s.input))


def _used(stores: _Stores, catalog: Catalog, head: Version) -> list[tuple[Catalog | str, InputRef]]:
    """The newest version ``head`` used of each input dataset, with its store's catalog (or why it cannot
    be opened). Versions of ``head``'s own dataset are left out: an incremental dataset is made from its
    previous version, which is never newer than itself."""
    best: dict[tuple[str, str], tuple[Catalog | str, InputRef]] = {}
    for ref in head.inputs:
        holder = stores.catalog(ref.store, catalog)
        url = holder.url if isinstance(holder, Catalog) else (ref.store or "")
        if holder is catalog and ref.dataset == head.dataset:
            continue
        key = (url.rstrip("/"), ref.dataset)
        if key not in best or best[key][1].number < ref.number:
            best[key] = (holder, ref)
    return list(best.values())


def _key(holder: Catalog | str, ref: InputRef) -> tuple[str, str]:
    return (holder.url if isinstance(holder, Catalog) else holder, ref.dataset)


def _head(holder: Catalog | str, dataset: str) -> Version | str | None:
    """The newest version of ``dataset`` in ``holder``, ``None`` if it has none, or why it cannot be read."""
    if isinstance(holder, str):
        return holder
    try:
        return holder.head(dataset)
    except GitfreeError as exc:
        return f"the newest version of {dataset} in {holder.url} cannot be read: {exc}"


def _judge(
    catalog: Catalog,
    newest: dict[tuple[str, str], Version | str | None],
    head: Version,
    holder: Catalog | str,
    ref: InputRef,
) -> StaleVersion | None:
    """Whether ``head`` was made from an older ``ref`` than its dataset's newest, with other content (a
    newer version with the same data, as ``dvc status`` would say, is not a change); or that it cannot
    be told."""
    where = None if holder is catalog else (holder.url if isinstance(holder, Catalog) else ref.store)
    now = newest.get(_key(holder, ref))
    if isinstance(now, str) or isinstance(holder, str):
        reason = now if isinstance(now, str) else str(holder)
        return StaleVersion(ref=head.ref, input=str(ref), input_store=where, newest=None, note=reason)
    if now is None or now.number <= ref.number:
        return None
    used: Version | Dropped | None
    try:
        used = holder.record(ref.dataset, ref.number)
    except (KeyMissing, GitfreeError):
        used = None
    if used is not None and used.md5 == now.md5:
        return None
    return StaleVersion(ref=head.ref, input=str(ref), input_store=where, newest=now.ref)


def reindex(catalog: Catalog, datasets: Iterable[str] = (), *, dry_run: bool = False) -> ReindexReport:
    """See :meth:`.Store.reindex`."""
    wanted = set(_checked_names(datasets))
    inventory = catalog.inventory(wanted, journals=False)
    unknown = sorted(wanted - {n for n, e in inventory.datasets.items() if e.versions or e.dropped or e.unreadable})
    if unknown:
        raise catalog.not_found_dataset(unknown[0])
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


Node = tuple[str, int]


def reached_through(catalog: Catalog, inventory: Inventory, gone: set[Node]) -> set[Node]:
    """Of the dropped versions ``gone``, those through which a version that exists is reached, by the
    records' inputs (versions and tombstones) and by the edges listed. A consumer known only from an edge
    (its dataset not in the inventory) or whose record cannot be read counts as existing: what is unknown
    is kept."""
    inputs_of: dict[Node, set[Node]] = {}
    for name, entry in inventory.datasets.items():
        records: list[tuple[int, Version | Dropped]] = [*entry.versions.items(), *entry.dropped.items()]
        for number, record in records:
            inputs_of[(name, number)] = {(i.dataset, i.number) for i in record.inputs if catalog.same_store(i.store)}
    for name, number, consumer, consumer_number in inventory.edges.values():
        inputs_of.setdefault((consumer, consumer_number), set()).add((name, number))
    reached = {node for node in inputs_of if node not in gone}
    pending = list(reached)
    while pending:
        for parent in inputs_of.get(pending.pop(), ()):
            if parent not in reached:
                reached.add(parent)
                pending.append(parent)
    return reached & gone


def edge_problems(catalog: Catalog, inventory: Inventory) -> tuple[dict[str, Version | Dropped], list[str], int]:
    """The reverse edges that should be there and are not (key -> the record whose edge it is), those there
    that do not hold (their consumer does not exist or does not name that input), and how many should be
    there.

    Every version's edges should be there, and those of a dropped version through which a version that
    exists is reached (lineage goes on through it; garbage collection removes the others). A missing edge
    is looked for again before it is reported, and an edge that looks orphaned is judged on its record read
    again: a commit that lands while the store is listed (its record and its edge are two writes) is not
    taken for a broken one."""
    missing: dict[str, Version | Dropped] = {}
    expected: set[str] = set()
    tombstones = {(name, n) for name, entry in inventory.datasets.items() for n in entry.dropped}
    through = reached_through(catalog, inventory, tombstones)
    for name, entry in inventory.datasets.items():
        records: list[Version | Dropped] = [*entry.versions.values()]
        records += [d for n, d in entry.dropped.items() if (name, n) in through]
        for record in records:
            for key in catalog.edge_keys(record):
                expected.add(key)
                if key not in inventory.edges:
                    missing[key] = record
    if missing:
        there = catalog.present(missing)
        missing = {key: record for key, record in missing.items() if key not in there}
    suspects = {key: edge for key, edge in inventory.edges.items() if key not in expected}
    records_now, unreadable = catalog.records_at({edge[2:] for edge in suspects.values()})
    orphans = []
    for key, (name, number, consumer, consumer_number) in suspects.items():
        if (consumer, consumer_number) in unreadable:
            continue  # an unreadable record may name it: fsck reports the record, not the edge
        now = records_now.get((consumer, consumer_number))
        if now is None or not catalog.made_from(now, name, number):
            orphans.append(key)
    return missing, sorted(orphans), len(expected)


def _checked_names(datasets: Iterable[str]) -> list[str]:
    names = list(datasets)
    for name in names:
        validate_dataset_name(name)
    return names


def input_of(catalog: Catalog, item: InputRef | Version) -> InputRef:
    """What a commit records of one of its inputs (see :meth:`.Store.commit`): another store's ``InputRef``
    as given (lineage reads it there), else this store's version, which must have a record (a version, or
    the tombstone of one GC dropped since)."""
    if isinstance(item, Version):
        return InputRef(dataset=item.dataset, number=item.number)
    if not catalog.same_store(item.store):
        return item
    try:
        catalog.record(item.dataset, item.number)
    except KeyMissing:
        raise NotFoundError(
            f"the input {item} does not exist in {catalog.url}; name a version that does (`gitfree log {item.dataset}`)"
        ) from None
    return InputRef(dataset=item.dataset, number=item.number)


# ---------------------------------------------------------------------- lineage inside orchestrator runs

RUN_MAX = 1024
"""The longest run id :meth:`.Store.note_use` takes (it is stored whole in each note)."""


def note_use(catalog: Catalog, version: Version, run: str, *, task: str | None, store_url: str) -> bool:
    """See :meth:`.Store.note_use`: one create-only note, best effort (a failure is a warning and ``False``)."""
    run = checked_run(run)
    note = RunNote(
        run=run,
        dataset=version.dataset,
        number=version.number,
        version_id=version.id,
        store=store_url,
        created_at=utcnow(),
        task=task,
        host=socket.gethostname(),
    )
    try:
        catalog.note_use(note)
    except (GitfreeError, OSError) as exc:
        logger.warning(
            "%s was pulled, but noting it as used in the run %r in %s failed, so a commit in this run will "
            "not record it as an input unless it is passed in inputs: %s",
            version.ref,
            run,
            store_url,
            str(exc),  # the text: a record kept by a log handler must not keep the caller's frames alive
        )
        return False
    return True


def used_in(catalog: Catalog, run: str) -> list[InputRef]:
    """See :meth:`.Store.used_in`."""
    return [InputRef(dataset=n.dataset, number=n.number) for n in catalog.used_in(checked_run(run))]


def checked_run(run: object) -> str:
    """``run`` if it is a run id :meth:`.Store.note_use` takes (text of 1 to RUN_MAX characters), else InputError."""
    if not isinstance(run, str) or not run.strip() or len(run) > RUN_MAX:
        raise InputError(f"a run id is a non-empty text of at most {RUN_MAX} characters, not {str(run)[:60]!r}")
    try:
        run.encode()
    except UnicodeEncodeError:
        raise InputError(f"the run id {run[:60]!r} is not valid Unicode text") from None
    return run
