"""The :class:`Store`: commit, pull, log, show, diff, tag and export dataset versions.

The public facade over the parts of a store (docs/design.md, "Module map"): the :class:`.Catalog` of
records, tags and hints; the :class:`.Objects` of the worker cache and the store's ``files/md5/``; the
:class:`.Coordinator` of leases and the GC lock; and the ordered write protocols of :mod:`.protocol`.
"""

from __future__ import annotations

import difflib
import logging
import os
import shlex
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import JsonValue, SecretStr

from . import fsck as fsck_module
from . import gc as gc_module
from . import lineage as lineage_module
from . import promotion, protocol
from .backends import Backend, FileBackend, KeyMissing, open_backend
from .catalog import Catalog
from .checkout import destination, dvc_file_text, guard_destination, guard_source, pull_into, write_dvc_file
from .config import StoreSettings
from .errors import GitfreeError, InputError, NotFoundError
from .leases import Coordinator
from .models import (
    AuditEvent,
    Author,
    Diff,
    DiffEntry,
    FileEntry,
    FsckReport,
    GcReport,
    InputRef,
    Lineage,
    MetricsDiff,
    MetricsPoint,
    ReindexReport,
    RunNote,
    StaleVersion,
    Tag,
    TagEvent,
    Version,
    utcnow,
)
from .objects import TRANSFER_JOBS, Objects, ProgressFactory
from .refs import Ref, validate_dataset_name, validate_tag_name
from .staging import HashState, check_source
from .tree import Tree, changes

__all__ = ["ProgressFactory", "Store"]

logger = logging.getLogger("gitfree")


class Store:
    """A gitfree store: versioned datasets under one URL, with no git and no server but S3.

    Args:
        url: ``s3://bucket/prefix``, ``file:///path`` or a local path. Default: ``$GITFREE_STORE``,
            else a directory under the user's data dir.
        cache_dir: the worker cache. Default: ``$GITFREE_CACHE_DIR``, else the user's cache dir.
        endpoint_url, access_key_id, secret_access_key, session_token, region, profile: S3 access;
            anything not given comes from ``GITFREE_*``, then the standard AWS chain.
        jobs: parallel transfers.
        settings: a complete :class:`StoreSettings`; the other arguments override it.
        progress: a factory of fsspec callbacks to report progress of long phases.

    Example:
        >>> store = Store("s3://ml-data/versions")                     # doctest: +SKIP
        >>> v = store.commit("images", "/tmp/images", message="nightly")  # doctest: +SKIP
        >>> store.pull(f"images@{v.number}", "/work/images")            # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | SecretStr | None = None,
        session_token: str | SecretStr | None = None,
        region: str | None = None,
        profile: str | None = None,
        jobs: int | None = None,
        settings: StoreSettings | None = None,
        progress: ProgressFactory | None = None,
    ) -> None:
        settings = StoreSettings.merged(
            settings,
            store=os.fspath(url) if url is not None else None,
            cache_dir=cache_dir,
            endpoint_url=endpoint_url,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            region=region,
            profile=profile,
            jobs=jobs,
        )
        self.backend: Backend = open_backend(settings)
        self.url = self.backend.url
        self.cache_dir = settings.prepared_cache_dir()  # ConfigError, naming the setting, if unusable
        self.objects = Objects(self.backend, self.cache_dir, settings.jobs, progress, settings.read_timeout)
        self.catalog = Catalog(self.backend, self.objects.read_many)
        self.settings = settings

    @property
    def settings(self) -> StoreSettings:
        """The settings this store runs with. Assigning new ones changes the timing and attempt settings
        (waits, leases, clock skew, attempts, jobs) from then on; the URL, credentials and cache stay."""
        return self._settings

    @settings.setter
    def settings(self, settings: StoreSettings) -> None:
        self._settings = settings
        self.objects.jobs = settings.jobs or TRANSFER_JOBS
        self.objects.read_timeout = settings.read_timeout
        self.coordinator = Coordinator.of(self.backend, settings)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # ------------------------------------------------------------------ reading the catalog

    def show(self, ref: str | Ref | Version) -> Version:
        """The version a ref names: ``images``, ``images@3``, ``images@prod``, ``images@latest~1``.

        A :class:`Version` is returned as it is (so every method that takes a ref takes one too).
        ``latest~K`` counts the versions that exist: those garbage collection dropped are skipped.

        Raises:
            NotFoundError: the dataset, version or tag does not exist, or the version was dropped by
                garbage collection (the message says when, and what exists).
        """
        return ref if isinstance(ref, Version) else self.catalog.resolve(ref)

    resolve = show

    def log(self, dataset: str, limit: int | None = None, *, before: int | None = None) -> list[Version]:
        """The versions of a dataset, newest first (at most ``limit``).

        Versions garbage collection dropped are not listed; a record that cannot be read is skipped
        with a warning (``gitfree fsck`` names it). ``before`` lists only the versions numbered below it:
        the next page after a page that ended at version ``before`` (one listing of the dataset's
        numbers, then only the records of that page are read).

        Raises:
            NotFoundError: the dataset does not exist.
            InputError: ``before`` is not a whole number of at least 1.
        """
        if before is not None and (isinstance(before, bool) or not isinstance(before, int) or before < 1):
            raise InputError(f"before must be a version number (1 or more), not {before!r}")
        return self.catalog.log(dataset, limit, before)

    def heads(self, datasets: Iterable[str]) -> dict[str, Version | None]:
        """The newest version of each of ``datasets`` (``None`` for one that has no readable version), read for
        all of them at once: every ``latest.json`` hint, the records they name and the number after each, in
        three rounds of parallel reads (a dataset whose hint is missing or wrong is read alone, as :meth:`show`
        reads it). What a page of many datasets needs, without one round trip per dataset.

        Raises:
            InputError: a malformed dataset name.
        """
        names = [validate_dataset_name(name) for name in datasets]
        return self.catalog.heads(names)

    def datasets(self) -> list[str]:
        """The names of every dataset in the store, sorted."""
        return self.catalog.datasets()

    def tags(self, dataset: str) -> list[Tag]:
        """The tags of a dataset, sorted by name."""
        return self.catalog.tags(dataset)

    def tag_events(self, dataset: str, number: int | None = None) -> list[TagEvent]:
        """Every creation, move and deletion of every tag of ``dataset`` (deleted tags too), by tag name and then
        in the order each tag's history keeps them; with ``number``, only the writes that moved a tag to or
        from that version (``number`` or ``previous`` is it): what a version's page shows of its tags.

        One listing of the dataset's tag histories and tags, then one parallel read of them (as
        :meth:`tag_history` reads one tag's).

        Raises:
            NotFoundError: the dataset does not exist.
            InputError: a malformed dataset name.
        """
        validate_dataset_name(dataset)
        histories = self.catalog.tag_histories(dataset)
        if not histories and not self.catalog.numbers(dataset):  # a misspelt name is not "no tags"
            raise self.catalog.not_found_dataset(dataset)
        events = [event for _, history in sorted(histories.items()) for event in history]
        return [e for e in events if number is None or number in (e.number, e.previous)]

    # ------------------------------------------------------------------ files of a version

    def files(self, ref: str | Ref | Version, *, sizes: bool = False) -> list[FileEntry]:
        """The files of a version: path and md5, and with ``sizes=True`` each file's size.

        Sizes come from the worker cache where it holds the object, else from the store (one
        request per object), so ask for them only when you need them.
        """
        version = self.show(ref)
        entries = self.objects.checked_files(version.pointer.out)
        if sizes:
            known = self.sizes(e.md5 for e in entries if e.size is None)
            entries = [e if e.size is not None else e.model_copy(update={"size": known.get(e.md5)}) for e in entries]
        return entries

    def sizes(self, md5s: Iterable[str]) -> dict[str, int]:
        """The size of each object (by md5), from the worker cache where it holds it, else from the
        store (one request each); an object missing from both is left out."""
        return self.objects.sizes(md5s)

    def prefetch(self, ref: str | Ref | Version, md5s: Iterable[str]) -> None:
        """Download the objects of a version among ``md5s`` that the worker cache lacks, in parallel,
        hash-checked (``IntegrityError`` if one is missing or damaged)."""
        version = self.show(ref)
        with HashState(self.cache_dir) as state:
            self.objects.fetch(version.ref, md5s, state)

    def diff(self, old: str | Ref | Version, new: str | Ref | Version) -> Diff:
        """Paths added, removed and modified from version ``old`` to version ``new``, with sizes."""
        a, b = self.show(old), self.show(new)
        changed = changes(self.files(a), self.files(b))
        sizes = self.sizes(md5 for _, om, nm in changed for md5 in (om, nm) if md5 is not None)
        entries = [
            DiffEntry(
                path=path,
                status="added" if om is None else "removed" if nm is None else "modified",
                old_md5=om,
                new_md5=nm,
                old_size=sizes.get(om or ""),
                new_size=sizes.get(nm or ""),
            )
            for path, om, nm in changed
        ]
        return Diff(old=a.ref, new=b.ref, entries=entries)

    # ------------------------------------------------------------------ lineage

    def lineage(self, ref: str | Ref | Version, direction: str = "up", depth: int | None = None) -> Lineage:
        """What a version was made from (``"up"``), what was made from it (``"down"``), or ``"both"``.

        Upstream follows the records' ``inputs``, into other stores when an input names one (opened with
        this store's settings; one that cannot be read, or lacks the version, is an ``external`` node).
        Downstream reads the reverse edges commits write in this store: one LIST per version, then the
        records it names in parallel. Versions garbage collection dropped are nodes with ``dropped``
        (lineage goes on through them). ``depth`` bounds the hops from ``ref`` (``None``: all).

        Raises:
            NotFoundError: ``ref`` names no version.
            InputError: ``direction`` is not up, down or both, or ``depth`` is negative.
        """
        if direction not in ("up", "down", "both"):
            raise InputError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
        if depth is not None and (not isinstance(depth, int) or depth < 0):
            raise InputError(f"depth must be a whole number of 0 or more, not {depth!r}")
        version = self.show(ref)
        return lineage_module.graph(self.catalog, version, direction, depth, self._open_catalog)  # type: ignore[arg-type]

    def stale(self, datasets: Iterable[str] = ()) -> list[StaleVersion]:
        """The newest versions (of ``datasets``, default every dataset) made from an input that has a newer
        version with other data since, e.g. ``model@4 was made from features@7; features is now at @9``:
        what to rebuild, as ``dvc status`` says of a pipeline. A newer input version with the same data
        (same md5) does not count, nor a version of the dataset itself (an incremental dataset), and of
        several versions of one input the newest used is judged. An input whose store cannot be read is
        listed with ``newest`` ``None`` and a ``note`` saying why: it could not be checked."""
        names = list(datasets)
        for name in names:
            validate_dataset_name(name)
        known = set(self.datasets()) if names else set()
        unknown = [name for name in names if name not in known]
        if unknown:
            raise self.catalog.not_found_dataset(unknown[0])
        return lineage_module.stale(self.catalog, names, self._open_catalog)

    def reindex(self, datasets: Iterable[str] = (), *, dry_run: bool = False) -> ReindexReport:
        """Write the reverse lineage edges of versions that lack them (committed before edges existed, or
        whose edge write failed) and remove edges that do not hold; idempotent. ``fsck --repair`` does
        the same. A name in ``datasets`` that is no dataset is a ``NotFoundError``."""
        names = list(datasets)
        for name in names:
            validate_dataset_name(name)
        return lineage_module.reindex(self.catalog, names, dry_run=dry_run)

    def _open_catalog(self, url: str) -> Catalog:
        """The catalog of another store named by an input, opened with this store's settings."""
        return Store(url, settings=self.settings).catalog

    # ------------------------------------------------------------------ metrics across versions

    def metrics(
        self, dataset: str, names: Sequence[str] | str | None = None, limit: int | None = None
    ) -> list[MetricsPoint]:
        """The metrics of a dataset's versions, newest first: one :class:`MetricsPoint` per version that records
        any of them (``names``: only those metrics; default every one), at most ``limit`` of them.

        The records are read as :meth:`log` reads them (in parallel); versions garbage collection dropped are
        not listed, and a record that cannot be read is skipped with a warning. A dataset whose versions
        record no metrics gives an empty list.

        Example:
            >>> [(p.number, p.metrics["acc"]) for p in store.metrics("model", ["acc"], limit=2)]  # doctest: +SKIP
            [(7, 0.91), (6, 0.89)]

        Raises:
            NotFoundError: the dataset does not exist, or no version of it records a metric of ``names``
                (the message lists the metrics that exist).
            InputError: a malformed dataset name, ``names`` empty or not names, ``limit`` below 1.
        """
        validate_dataset_name(dataset)
        wanted = _metric_names(names)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InputError(
                f"limit must be a whole number of at least 1, not {limit!r}", options=(("limit", "--limit"),)
            )
        numbers = sorted(self.catalog.numbers(dataset), reverse=True)
        if not numbers:
            raise self.catalog.not_found_dataset(dataset)
        points: list[MetricsPoint] = []
        seen: set[str] = set()
        first = len(numbers) if limit is None else limit + 1
        for _, record in self.catalog.records(dataset, numbers, first=first):
            if not isinstance(record, Version):
                continue  # a tombstone, or a record that cannot be read (warned about)
            seen.update(record.metrics)
            values = {k: v for k, v in record.metrics.items() if wanted is None or k in wanted}
            if values and (limit is None or len(points) < limit):
                points.append(
                    MetricsPoint(ref=record.ref, number=record.number, created_at=record.created_at, metrics=values)
                )
            if limit is not None and len(points) >= limit and (wanted is None or seen.issuperset(wanted)):
                break  # enough, and every name asked for is known to exist
        missing = [name for name in wanted or () if name not in seen]
        if missing:
            raise _unknown_metrics(dataset, missing, seen)
        return points

    def compare(self, old: str | Ref | Version, new: str | Ref | Version) -> MetricsDiff:
        """The metrics of version ``old`` against those of version ``new``: per metric its old and new value,
        ``delta`` and ``relative`` change, and the metrics only one side has (``added``, ``removed``).

        The versions may be of different datasets (a model's metrics on two data sets).

        Example:
            >>> store.compare("model@6", "model@7").get("acc").delta  # doctest: +SKIP
            0.02

        Raises:
            NotFoundError: either version does not exist, or was dropped by garbage collection.
        """
        a, b = self.show(old), self.show(new)
        return MetricsDiff.between(a.ref, a.metrics, b.ref, b.metrics)

    # ------------------------------------------------------------------ pull, open and export

    def pull(
        self,
        ref: str | Ref | Version,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        paths: Sequence[str] | None = None,
    ) -> Path:
        """Materialise a version at ``dest`` (any path) and return it.

        Only objects missing from the worker cache are downloaded; every file is
        hash-checked as it is written; a destination that already holds the version
        is left alone. A destination holding, unmodified, an earlier version gitfree pulled
        there is updated in place without ``overwrite`` (only the files that differ are
        written, as ``dvc checkout`` does). ``paths`` restricts the pull to some files or
        folders of the version. What a killed pull left beside ``dest`` is cleared first.

        Raises:
            InputError: ``dest`` holds other data (or local changes to what gitfree pulled there)
                and ``overwrite`` is false; or, even with ``overwrite``, ``dest`` is, contains or lies
                inside the store or the worker cache, is the current directory or one of its parents,
                the home directory or ``/``, lies below a file, or is a device or a mount point.
            UnsafePathError: the version names a path outside ``dest`` (nothing is written).
            IntegrityError: an object is missing from the store or does not match its hash.
        """
        version = self.show(ref)
        entries = self.files(version)
        if paths is not None:
            entries = Tree.build(entries).select(paths)
        single = not version.is_dir
        target = destination(dest, version.pointer.out.path if single else None)
        guard_destination(
            target,
            store_root=self._store_root(),
            cache_dir=self.cache_dir,
            hint=version.dataset.rpartition("/")[2],
        )
        with HashState(self.cache_dir) as state:
            wrote = pull_into(
                entries,
                target,
                ref=version.ref,
                cache_dir=self.cache_dir,
                single=single,
                overwrite=overwrite,
                state=state,
                fetch=lambda md5s: self.objects.fetch(version.ref, md5s, state),
                progress=lambda: self.objects.callback(f"Checking out {version.ref}"),
            )
        if wrote:
            logger.info("pulled %s to %s", version.ref, target)
        else:
            logger.info("%s already holds %s", target, version.ref)
        return target

    def open(self, ref: str | Ref | Version, path: str = "") -> BinaryIO:
        """Open one file of a version for reading, fetching only that file's object.

        ``path`` is the file's path inside the version (for a single-file version, its name or
        nothing). The object comes from the worker cache when it holds it intact, else from the
        store, hashed as it streams; what is returned is a read-only binary file.

        Raises:
            NotFoundError: the version has no such file (the message says what it has there).
            InputError: ``path`` is a folder of the version.
            IntegrityError: the object is missing from the store or does not match its hash.
        """
        version = self.show(ref)
        tree = Tree.build(self.files(version))
        wanted = path.strip("/")
        if not version.is_dir and wanted in ("", version.pointer.out.path):
            wanted = version.pointer.out.path
        entry = tree.files.get(wanted)
        if entry is None:
            inside = tree.children(wanted) if wanted in tree.dirs else []
            if inside:
                shown = ", ".join(inside[:5]) + (" ..." if len(inside) > 5 else "")
                where = f"{wanted or '/'} is a folder of {version.ref}"
                pull = f"pull it with paths=[{wanted!r}]" if wanted else "pull the version"
                cli_pull = f"pull it with --path {shlex.quote(wanted)}" if wanted else "pull the version"
                raise InputError(
                    f"{where}: open one of its files ({shown}), or {pull}",
                    cli=f"{where}: cat one of its files ({shown}), or {cli_pull}",
                )
            raise NotFoundError(f"{version.ref} has no file {wanted!r}; list its files with `gitfree ls {version.ref}`")
        return open(self.objects.verified(version.ref, entry.md5), "rb")

    def dvc_file(self, ref: str | Ref | Version) -> str:
        """The text of the ``.dvc`` file of a version, as :meth:`export_dvc` writes it (its data named as the
        version's output, e.g. ``images`` for ``images.dvc``): what ``dvc pull`` needs in a git+DVC project
        whose remote is this store. The store's URL in its comment carries no credentials."""
        version = self.show(ref)
        return dvc_file_text(version, self.url, version.pointer.out.path)

    def export_dvc(self, ref: str | Ref | Version, path: str | os.PathLike[str]) -> Path:
        """Write the ``.dvc`` file of a version, for a plain git+DVC project whose remote is this store.

        ``path`` is the ``.dvc`` file (``repo/images.dvc``, whose data path becomes ``images``)
        or a directory (the file is named after the version's data). Then, in that project:
        ``dvc remote add -d store <store URL>`` and ``dvc pull``.
        """
        return write_dvc_file(self.show(ref), self.url, Path(path).expanduser())

    # ------------------------------------------------------------------ writing

    def commit(
        self,
        dataset: str,
        path: str | os.PathLike[str],
        *,
        message: str = "",
        metadata: Mapping[str, JsonValue] | None = None,
        metrics: Mapping[str, float] | None = None,
        inputs: Iterable[str | Ref | Version | InputRef] | None = None,
        author: Author | None = None,
        force: bool = False,
        commit_id: uuid.UUID | None = None,
    ) -> Version:
        """Commit the file or directory at ``path`` as the next version of ``dataset``.

        If the data and the inputs equal the newest version's, that version is returned and
        nothing is written (``force=True`` makes a new version anyway); the same data made from
        other inputs is a new version (same objects, nothing uploaded). Safe to call from any
        number of workers at once: each gets its own version number, none is lost, and no number
        is ever given twice (docs/design.md, "Commit").

        Args:
            dataset: name such as ``images`` or ``raw/sales``.
            path: the file or directory to commit.
            message: a human description.
            metadata: free JSON stored with the version.
            metrics: name → number, e.g. ``{"rows": 1200}``.
            inputs: versions this one was made from (refs, versions or ``InputRef``).
            author: who made it; default: this user and host.
            force: create a version even when the data is unchanged.
            commit_id: the id of this commit attempt (default: a new UUID). A retry that passes the
                same id recognises a version its earlier attempt created (and says ``created``).

        Returns:
            The version that holds the data: ``version.created`` is true when this call (or an earlier
            attempt with the same ``commit_id``) created it, false when the newest version already held
            the same data from the same inputs, so nothing was written (its message and metadata are not
            those of this call).

        Raises:
            InputError: bad name or a path that is missing or empty.
            ConflictError: other writers kept winning, or garbage collection holds the store.
        """
        validate_dataset_name(dataset)
        source = Path(path).expanduser().absolute()
        check_source(source)  # missing, special or oddly named: before anything else
        guard_source(source, store_root=self._store_root(), cache_dir=self.cache_dir)
        fields: dict[str, Any] = {
            "dataset": dataset,
            "id": commit_id or uuid.uuid4(),
            "message": message,
            "author": author or Author.current(),
            "metadata": dict(metadata or {}),
            "metrics": dict(metrics or {}),
            # Each input once (the same version given twice, or given and noted in the run, is one input).
            "inputs": list(dict.fromkeys(self._input_ref(item) for item in inputs or ())),
        }
        return protocol.commit(
            self.catalog,
            self.objects,
            self.coordinator,
            source=source,
            fields=fields,
            force=force,
            attempts=self.settings.commit_attempts,
        )

    def _input_ref(self, item: str | Ref | Version | InputRef) -> InputRef:
        if isinstance(item, InputRef):
            if not self.catalog.same_store(item.store):
                return item  # another store's: lineage reads it there (an unreadable one is an external node)
            try:  # this store's: it must have a record (a version, or the tombstone of one GC dropped since)
                self.catalog.record(item.dataset, item.number)
            except KeyMissing:
                raise NotFoundError(
                    f"the input {item} does not exist in {self.url}; name a version that does (`gitfree log "
                    f"{item.dataset}`)"
                ) from None
            return InputRef(dataset=item.dataset, number=item.number)
        version = self.show(item)
        return InputRef(dataset=version.dataset, number=version.number)

    def _store_root(self) -> Path | None:
        return self.backend.root if isinstance(self.backend, FileBackend) else None

    def tag(
        self,
        ref: str | Ref | Version,
        tag: str,
        *,
        move: bool = False,
        expect: int | None = None,
        message: str = "",
        author: Author | None = None,
    ) -> Tag:
        """Point ``tag`` at a version. Tags are create-only; ``move=True`` moves an existing one.

        Every creation and move is kept in the tag's history (:meth:`tag_history`), with ``message`` and
        ``author`` (default: this user and host). A deleted tag (:meth:`untag`) is created again without
        ``move``.

        Args:
            expect: with ``move``, the version number the caller believes the tag is at; the move
                fails if it is elsewhere (compare-and-swap, as ``git update-ref NEW OLD``).

        Returns:
            The tag's record: ``written`` is false when the tag already pointed at the version (nothing
            was written); ``seq`` is this write's place in the tag's history.

        Raises:
            ConflictError: the tag exists (and ``move`` is false), it is not at ``expect``, or it
                moved while we moved it.
        """
        validate_tag_name(tag)
        version = self.show(ref)
        return protocol.move_tag(
            self.catalog,
            self.coordinator,
            version,
            tag,
            move=move,
            expect=expect,
            attempts=self.settings.commit_attempts,
            author=author,
            message=message,
        )

    # ------------------------------------------------------------------ tag history, promotion and audit

    def untag(
        self, dataset: str, tag: str, *, expect: int | None = None, message: str = "", author: Author | None = None
    ) -> Tag:
        """Delete ``tag`` of ``dataset``; the deletion is kept in the tag's history.

        The tag's record is swapped for a deleted marker, so its history goes on (and a later
        :meth:`tag` continues it). From then on the tag names nothing: ``dataset@tag`` is a
        ``NotFoundError`` saying when it was deleted and by whom, and the version it pointed at is no
        longer kept by garbage collection for it.

        Args:
            expect: only delete the tag if it is at this version number now (compare-and-swap).
            message: why, kept in the history.
            author: who; default: this user and host.

        Returns:
            The deleted marker (``deleted`` true; ``number`` is the version the tag pointed at).

        Raises:
            NotFoundError: the tag does not exist or was deleted already.
            ConflictError: the tag is not at ``expect``.
        """
        validate_dataset_name(dataset)
        validate_tag_name(tag)
        if not self.catalog.numbers(dataset):  # a misspelt dataset is not "no such tag"
            raise self.catalog.not_found_dataset(dataset)
        return protocol.delete_tag(
            self.catalog,
            dataset,
            tag,
            expect=expect,
            attempts=self.settings.commit_attempts,
            author=author or Author.current(),
            message=message,
        )

    def tag_history(self, dataset: str, tag: str) -> list[TagEvent]:
        """Every creation, move and deletion of ``tag``, oldest first, in the order they took effect.

        Each event has ``seq`` (1 for the creation, then one per write, with no gaps), ``action``,
        ``previous`` and ``number`` (the version before and after; each event's ``previous`` is the
        ``number`` of the one before it), ``created_at``, ``author`` (user, host and orchestrator run),
        ``message`` and, for a promotion, ``gate``. A tag written before history was kept starts with an
        event of ``seq`` 0 made from its record.

        Raises:
            NotFoundError: the dataset has no such tag and never had.
        """
        validate_dataset_name(dataset)
        validate_tag_name(tag)
        history = self.catalog.tag_histories(dataset, tag).get(tag)
        if not history:
            names = [t.tag for t in self.catalog.tags(dataset)]  # NotFoundError for a missing dataset
            have = f"its tags are: {', '.join(names)}" if names else "it has no tags"
            raise NotFoundError(f"{dataset!r} has no tag {tag!r} and never had; {have}")
        return history

    def promote(
        self,
        ref: str | Ref | Version,
        stage: str,
        *,
        require: Mapping[str, str] | Iterable[str] | None = None,
        message: str = "",
        author: Author | None = None,
    ) -> Tag:
        """Move the stage tag ``stage`` (``production``) to the version ``ref``, if its metrics pass ``require``.

        The stage's record is read, the candidate judged against the version it names, and the tag moved
        only from that same record (compare-and-swap): if it moved meanwhile, nothing is written and a
        ``ConflictError`` says so (promote again to be judged against the new holder).

        ``require`` maps a metric to a comparison: ``{"accuracy": ">="}`` (at least the current holder's
        accuracy) or ``{"f1": ">= 0.9"}`` (at least 0.9); operators ``>=``, ``>``, ``<=``, ``<``, ``==``.
        The strings ``["accuracy>=", "f1>=0.9"]`` say the same. A comparison with the holder is not
        applied when the stage has no holder yet (the returned tag's ``gate`` says so). What was compared
        is kept in the tag's ``gate`` and history.

        With a stage order (:meth:`set_stages`, e.g. dev → staging → production), a version enters a stage
        only while it holds the stage before it (checked when the promotion is judged); the first stage
        takes any version.

        Returns:
            The stage's tag (``written`` false if the version already held the stage: nothing was written).

        Raises:
            GateError: a requirement failed (the message shows both values), the candidate lacks a metric
                a requirement needs, or it does not hold the previous stage.
            InputError: a malformed requirement, a metric no version involved has (the message lists
                theirs), or a stage not in the stage order.
            ConflictError: the stage moved while the promotion was judged.
        """
        return promotion.promote(
            self.catalog,
            self.coordinator,
            self.show(ref),
            stage,
            require=require,
            message=message,
            author=author or Author.current(),
            attempts=self.settings.commit_attempts,
        )

    def set_stages(self, dataset: str, stages: Sequence[str], *, author: Author | None = None) -> list[str]:
        """Set the stage order of ``dataset`` (``["dev", "staging", "production"]``), which :meth:`promote`
        follows; ``[]`` removes it. Returns the order now in force.

        Raises:
            NotFoundError: the dataset does not exist.
            InputError: a stage is not a valid tag name, or is named twice.
        """
        validate_dataset_name(dataset)
        record = promotion.set_stages(
            self.catalog, dataset, stages, author=author or Author.current(), attempts=self.settings.commit_attempts
        )
        return list(record.stages)

    def stages(self, dataset: str) -> list[str]:
        """The stage order of ``dataset`` (empty when none is set)."""
        validate_dataset_name(dataset)
        record, _ = self.catalog.stages(dataset)
        if record is None and not self.catalog.numbers(dataset):  # a misspelt name is not "no stage order"
            raise self.catalog.not_found_dataset(dataset)
        return list(record.stages) if record is not None else []

    def audit(self, dataset: str, limit: int | None = None) -> list[AuditEvent]:
        """The audit trail of ``dataset``, newest first (at most ``limit`` events): its commits (from the version
        records: time, author with its orchestrator run, message), the versions garbage collection dropped,
        and every creation, move and deletion of its tags (from their histories), with who and why.

        Times are each writer's clock; the events of one tag are in the order of its history.
        """
        validate_dataset_name(dataset)
        return promotion.audit(self.catalog, dataset, limit)

    # ------------------------------------------------------------------ lineage inside orchestrator runs

    def note_use(self, run: str, ref: str | Ref | Version, *, task: str | None = None) -> bool:
        """Note in this store that one of its versions was used (pulled) in the orchestrator run ``run``.

        A commit in the same run, on any worker and in any process, finds the note with :meth:`used_in` and
        records the version as an input (docs/design.md, "Lineage inside orchestrator runs"). One
        create-only PUT of ``runs/<run>/<dataset>@<n>.json``; a version the run noted already writes
        nothing. Nothing is kept in memory. The Prefect tasks and Airflow operators call it after a pull.

        Best effort: a note that cannot be written (a read-only credential, a lost answer, a full disk)
        is logged as a warning and ``False`` is returned. A pull never fails because its lineage could not
        be noted.

        Args:
            run: the run, any string of up to 1024 characters (``prefect:<flow run id>``,
                ``airflow:<dag id>:<run id>``).
            ref: the version used (a :class:`Version` as pulled costs no request).
            task: the task that used it, recorded in the note.

        Raises:
            InputError: ``run`` is empty, too long or not text.
            NotFoundError: ``ref`` names no version of this store.
        """
        run = _checked_run(run)
        version = self.show(ref)
        note = RunNote(
            run=run,
            dataset=version.dataset,
            number=version.number,
            version_id=version.id,
            store=self.url,
            created_at=utcnow(),
            task=task,
            host=socket.gethostname(),
        )
        try:
            self.catalog.note_use(note)
        except (GitfreeError, OSError) as exc:
            logger.warning(
                "%s was pulled, but noting it as used in the run %r in %s failed, so a commit in this run will "
                "not record it as an input unless it is passed in inputs: %s",
                version.ref,
                run,
                self.url,
                str(exc),  # the text: a record kept by a log handler must not keep the caller's frames alive
            )
            return False
        return True

    def used_in(self, run: str) -> list[InputRef]:
        """The versions of this store noted as used in the orchestrator run ``run`` (:meth:`note_use`), as
        inputs, sorted by dataset and number: what a commit in that run was made from.

        One LIST of the run's notes and one parallel read of them and of the records they name. A version
        is listed only if the record at its number is still the version pulled, or the tombstone garbage
        collection left of it (its number names it forever); a note that cannot be read is skipped with a
        warning.

        Raises:
            InputError: ``run`` is empty, too long or not text.
        """
        return [InputRef(dataset=n.dataset, number=n.number) for n in self.catalog.used_in(_checked_run(run))]

    # ------------------------------------------------------------------ maintenance

    def gc(
        self,
        *,
        keep_last: int | None = None,
        keep_within: timedelta | None = None,
        grace: timedelta | None = None,
        dry_run: bool = False,
        delete_foreign: bool = False,
    ) -> GcReport:
        """Drop the versions the retention policy does not keep, then delete gitfree's objects nothing kept references.

        Every dataset keeps its newest and its tagged versions, the last ``keep_last`` and those younger
        than ``keep_within``; with neither, every version is kept and only unreferenced objects (a
        crashed commit's uploads) go. A dropped version leaves a tombstone (its number is never reused).
        Objects younger than ``grace`` (default: lease TTL + clock skew) stay. Only objects gitfree wrote
        are deleted; others in DVC's layout (a DVC project's pushes) are counted in
        ``report.foreign_objects`` and deleted only with ``delete_foreign=True``. A dataset with an
        unreadable record drops nothing. Run notes (:meth:`note_use`) over 30 days old are removed
        (``report.run_notes_removed``). Safe while commits run; a GC that dies part way is run again
        (docs/design.md, "Garbage collection").

        Raises:
            ConflictError: another GC runs, or commits in flight did not finish uploading in time.
            IntegrityError: the listing of a kept version cannot be read; nothing was deleted (run :meth:`fsck`).
        """
        return gc_module.collect(
            self.catalog,
            self.objects,
            self.coordinator,
            keep_last=keep_last,
            keep_within=keep_within,
            grace=grace,
            dry_run=dry_run,
            delete_foreign=delete_foreign,
        )

    def fsck(self, *, deep: bool = False, repair: bool = False, datasets: Iterable[str] = ()) -> FsckReport:
        """Check every version (of ``datasets``, default all): records, listings, objects, tags, ``latest.json``.

        Objects are proven present by one listing of the store, and their content by the
        server's ETag where it is the md5 (single-part S3 uploads); ``deep=True`` downloads
        and hashes every object instead. ``repair=True`` re-uploads missing or damaged
        objects the worker cache holds intact, then checks again. ``report.ok`` tells
        whether anything is left broken.
        """
        parts = (self.catalog, self.objects, self.coordinator)
        report = fsck_module.check(*parts, deep=deep, repair=repair, datasets=datasets)
        if repair and any(p.repaired for p in report.problems):
            again = fsck_module.check(*parts, deep=deep, repair=True, datasets=datasets)
            fixed = [p for p in report.problems if p.repaired]
            report = again.model_copy(update={"problems": fixed + [p for p in again.problems if p not in fixed]})
        return report


def _metric_names(names: Sequence[str] | str | None) -> list[str] | None:
    """The metric names :meth:`Store.metrics` was asked for (one name may be given as a string), deduplicated."""
    if names is None:
        return None
    wanted = [names] if isinstance(names, str) else list(names)
    if not wanted:
        raise InputError("names is empty: pass the metrics to list, or names=None for every one")
    bad = next((n for n in wanted if not isinstance(n, str) or not n), None)
    if bad is not None:
        raise InputError(f"a metric name is a non-empty string, not {bad!r}")
    return list(dict.fromkeys(wanted))


def _unknown_metrics(dataset: str, missing: Sequence[str], existing: Iterable[str]) -> NotFoundError:
    """``NotFoundError`` naming the metrics of ``dataset`` that exist (and a close match of a typo)."""
    names = sorted(existing)
    what = ", ".join(repr(n) for n in missing)
    noun = "metric" if len(missing) == 1 else "metrics"
    if not names:
        return NotFoundError(
            f"no version of {dataset!r} records the {noun} {what}: it records no metrics at all "
            "(commit with metrics={'name': number} to record some)",
            cli=f"no version of {dataset!r} records the {noun} {what}: it records no metrics at all "
            "(commit with --metric NAME=NUMBER to record some)",
        )
    close = difflib.get_close_matches(missing[0], names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return NotFoundError(f"no version of {dataset!r} records the {noun} {what}{hint}; its metrics are: {shown}")


RUN_MAX = 1024
"""The longest run id :meth:`Store.note_use` takes (it is stored whole in each note)."""


def _checked_run(run: object) -> str:
    if not isinstance(run, str) or not run.strip() or len(run) > RUN_MAX:
        raise InputError(f"a run id is a non-empty text of at most {RUN_MAX} characters, not {str(run)[:60]!r}")
    try:
        run.encode()
    except UnicodeEncodeError:
        raise InputError(f"the run id {run[:60]!r} is not valid Unicode text") from None
    return run
