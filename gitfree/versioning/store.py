"""The :class:`Store`: commit, pull, log, show, diff, tag and export dataset versions.

The public facade over the parts of a store (docs/design.md, "Module map"): the :class:`.Catalog` of
records, tags and hints; the :class:`.Objects` of the worker cache and the store's ``files/md5/``; the
:class:`.Coordinator` of leases and the GC lock; and the ordered write protocols of :mod:`.protocol`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from pydantic import JsonValue, SecretStr

from . import fsck as fsck_module
from . import gc as gc_module
from . import lineage as lineage_module
from . import metrics as metrics_module
from . import promotion, protocol
from .backends import Backend, FileBackend, S3Backend, open_backend
from .catalog import Catalog
from .checkout import (
    destination,
    dvc_file_text,
    guard_destination,
    guard_source,
    path_relation,
    pull_into,
    write_dvc_file,
)
from .config import AWS_ENDPOINT, SourceOptions, StoreSettings, endpoint_id
from .errors import InputError, NotFoundError
from .leases import Coordinator
from .models import (
    AuditEvent,
    Author,
    Diff,
    FileEntry,
    FsckReport,
    GcReport,
    InputRef,
    Lineage,
    MetricsDiff,
    MetricsPoint,
    References,
    ReindexReport,
    StaleVersion,
    Tag,
    TagEvent,
    Version,
)
from .objects import PEEK_LENGTH, PEEK_MAX, TRANSFER_JOBS, Objects, ProgressFactory, check_peek
from .refs import Ref, validate_dataset_name, validate_tag_name
from .sources import AzureSource, FileSource, GCSSource, S3Source, Source, UnreachableSource, open_source
from .staging import HashState, check_source
from .tree import Tree, changes, diff_entries

__all__ = ["PEEK_LENGTH", "PEEK_MAX", "ProgressFactory", "Store"]

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
        azure_account_name, azure_account_key, azure_sas_token, azure_connection_string: access to an
            ``az://container/prefix`` store (``endpoint_url`` for Azurite or another endpoint); anything not
            given comes from ``GITFREE_AZURE_*``, then ``AZURE_STORAGE_*``.
        gcs_credentials, gcs_project: access to a ``gs://bucket/prefix`` store: a service-account JSON key (or
            its path), default ``GITFREE_GCS_CREDENTIALS``, then ``GOOGLE_APPLICATION_CREDENTIALS``; an emulator
            is reached anonymously at ``endpoint_url`` or ``STORAGE_EMULATOR_HOST``.
        source_options: how this worker reaches ``s3://`` sources of versions by reference that are not on the
            store's endpoint or credentials: one :class:`SourceOptions` (also the default of a commit by reference),
            or a mapping from the endpoint a reference table records to the options for it. Default:
            ``GITFREE_SOURCE_*``. Never written to the store (docs/design.md, "Source options").

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
        azure_account_name: str | None = None,
        azure_account_key: str | SecretStr | None = None,
        azure_sas_token: str | SecretStr | None = None,
        azure_connection_string: str | SecretStr | None = None,
        gcs_credentials: str | SecretStr | None = None,
        gcs_project: str | None = None,
        source_options: SourceOptions | Mapping[str, SourceOptions] | None = None,
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
            azure_account_name=azure_account_name,
            azure_account_key=azure_account_key,
            azure_sas_token=azure_sas_token,
            azure_connection_string=azure_connection_string,
            gcs_credentials=gcs_credentials,
            gcs_project=gcs_project,
        )
        self.backend: Backend = open_backend(settings)
        self.url = self.backend.url
        self.cache_dir = settings.prepared_cache_dir()  # ConfigError, naming the setting, if unusable
        self.objects = Objects(self.backend, self.cache_dir, settings.jobs, progress, settings.read_timeout)
        self.catalog = Catalog(self.backend, self.objects.read_many)
        self.settings = settings
        self._source_options, self._commit_options = _source_options(source_options)
        self.objects.relearn = self._relearn

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
        """The version a ref names: ``images``, ``images@3``, ``images@prod``, ``images@latest~1``
        (``latest~K`` counts the versions that exist). A :class:`Version` is returned as it is, so every
        method that takes a ref takes one too.

        Raises:
            NotFoundError: no such dataset, version or tag, or the version was dropped by garbage
                collection (the message says when, and what exists).
        """
        version = ref if isinstance(ref, Version) else self.catalog.resolve(ref)
        if version.reference is not None and not self.objects.referred(version.reference.table):
            self._refer(version)
        return version

    resolve = show

    def _relearn(self, ref: str) -> None:
        """Tell the objects again where the files of ``ref`` are, if it is a version by reference (a read whose
        files neither the store nor a kept table holds). A version dropped meanwhile is left to the read, which
        fails as any read of a version GC dropped under it does (missing objects), not with another error."""
        try:
            version = self.catalog.resolve(ref)
        except NotFoundError:
            return
        self._refer(version)

    def _refer(self, version: Version) -> None:
        """Tell the objects where a version by reference's files are (its table read and checked once)."""
        if version.reference is None:
            return
        table, listing = self.catalog.references(version)
        self.objects.refer(version.md5, table, listing, self._source_of(table), version.reference.table)

    def _source_of(self, table: References) -> Source:
        """The source of a reference table: on the store's endpoint and credentials, or, when the table names an
        endpoint of its own, with this store's source options for that endpoint (without them, a source whose
        reads say in one line what to set)."""
        if table.endpoint is None:
            return open_source(table.source, self.settings)
        options = self._source_options.get(table.endpoint)
        if (
            options is None
            and isinstance(self.backend, S3Backend)
            and table.endpoint == endpoint_id(self.backend.endpoint)
        ):
            return open_source(table.source, self.settings)  # the store's own endpoint: its settings
        if options is None:
            return UnreachableSource(table.source, table.endpoint, list(self._source_options))
        return open_source(table.source, self.settings, options)

    def log(self, dataset: str, limit: int | None = None, *, before: int | None = None) -> list[Version]:
        """The versions of a dataset, newest first (at most ``limit``; with ``before``, only those numbered below
        it: the page after one that ended there, reading only that page's records); dropped versions are not
        listed, and a record that cannot be read is skipped with a warning (``gitfree fsck`` names it)."""
        return self.catalog.log(dataset, limit, before)

    def heads(self, datasets: Iterable[str] | str) -> dict[str, Version | None]:
        """The newest version of each of ``datasets`` (``None``: none readable), for all of them at once: every
        ``latest.json``, the records they name and the number after each, in three rounds of parallel reads (a
        dataset whose hint is missing or wrong is read alone, as :meth:`show` does). ``InputError`` for a bad name."""
        return self.catalog.heads([validate_dataset_name(name) for name in _names(datasets)])

    def datasets(self) -> list[str]:
        """The names of every dataset in the store, sorted."""
        return self.catalog.datasets()

    def tags(self, dataset: str) -> list[Tag]:
        """The tags of a dataset, sorted by name."""
        return self.catalog.tags(dataset)

    # ------------------------------------------------------------------ files of a version

    def files(self, ref: str | Ref | Version, *, sizes: bool = False) -> list[FileEntry]:
        """The files of a version (path and md5; with ``sizes=True`` each size, from the worker cache where it
        holds the object, else one request per object to the store). A listing is parsed and checked once per
        process (the last few are kept in memory: :data:`~.objects.LISTINGS_KEPT`)."""
        entries = self.objects.checked_files(self.show(ref).pointer.out)
        if sizes:
            known = self.sizes(e.md5 for e in entries if e.size is None)
            entries = [e if e.size is not None else e.model_copy(update={"size": known.get(e.md5)}) for e in entries]
        return entries

    def sizes(self, md5s: Iterable[str]) -> dict[str, int]:
        """The size of each object (by md5), from the worker cache or the store; a missing one is left out."""
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
        return Diff(old=a.ref, new=b.ref, entries=diff_entries(changed, sizes))

    # ------------------------------------------------------------------ lineage

    def lineage(self, ref: str | Ref | Version, direction: str = "up", depth: int | None = None) -> Lineage:
        """What a version was made from (``"up"``), what was made from it (``"down"``), or ``"both"``, at most
        ``depth`` hops away (``None``: all). Upstream follows the records' ``inputs``, into other stores (one
        that cannot be read is an ``external`` node); downstream reads the reverse edges commits write; dropped
        versions are nodes with ``dropped`` (docs/design.md, "Lineage").

        Raises:
            NotFoundError: ``ref`` names no version.
            InputError: ``direction`` is not up, down or both, or ``depth`` is negative.
        """
        return lineage_module.graph(self.catalog, self.show(ref), direction, depth, self._open_catalog)

    def stale(self, datasets: Iterable[str] | str = ()) -> list[StaleVersion]:
        """The newest versions (of ``datasets``, default all) made from an input that has a newer version with
        other data since (``model@4 was made from features@7; features is now at @9``): what to rebuild, as
        ``dvc status`` says. Same data under a newer number does not count, nor the dataset's own earlier
        versions; an input whose store cannot be read has ``newest`` ``None`` and a ``note`` saying why."""
        return lineage_module.stale(self.catalog, _names(datasets), self._open_catalog)

    def reindex(self, datasets: Iterable[str] | str = (), *, dry_run: bool = False) -> ReindexReport:
        """Write the reverse lineage edges versions lack and remove those that do not hold (idempotent; ``fsck
        --repair`` does it too). A name in ``datasets`` that is no dataset is a ``NotFoundError``."""
        return lineage_module.reindex(self.catalog, _names(datasets), dry_run=dry_run)

    def _open_catalog(self, url: str) -> Catalog:
        """The catalog of another store named by an input, opened with this store's settings."""
        return Store(url, settings=self.settings).catalog

    # ------------------------------------------------------------------ metrics across versions

    def metrics(
        self, dataset: str, names: Sequence[str] | str | None = None, limit: int | None = None
    ) -> list[MetricsPoint]:
        """The metrics of a dataset's versions, newest first: a :class:`MetricsPoint` per version recording any
        of ``names`` (default: every metric), at most ``limit``; ``[]`` if no version records metrics.

        Example:
            >>> [(p.number, p.metrics["acc"]) for p in store.metrics("model", ["acc"], limit=2)]  # doctest: +SKIP
            [(7, 0.91), (6, 0.89)]

        Raises:
            NotFoundError: no such dataset, or no version records a metric of ``names`` (the message lists
                those that exist).
            InputError: a malformed name, ``names`` empty, ``limit`` below 1.
        """
        return metrics_module.series(self.catalog, dataset, names, limit)

    def compare(self, old: str | Ref | Version, new: str | Ref | Version) -> MetricsDiff:
        """The metrics of version ``old`` against those of ``new`` (of any datasets): per metric both values,
        ``delta`` and ``relative``, and those only one side has (``added``, ``removed``).

        Example:
            >>> store.compare("model@6", "model@7").get("acc").delta  # doctest: +SKIP
            0.02
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
        """Materialise a version (or its ``paths``) at ``dest`` and return it.

        Only objects the worker cache lacks are downloaded; every file is hash-checked as it is written. A
        destination that holds the version is left alone; one holding, unmodified, an earlier version gitfree
        pulled there is updated in place (only the files that differ are written, as ``dvc checkout`` does).
        What a killed pull left beside ``dest`` is cleared first (docs/design.md, "Pull").

        Raises:
            InputError: ``dest`` holds other data or local changes and ``overwrite`` is false; or, even with
                ``overwrite``, ``dest`` is, holds or lies in the store or the worker cache, is the current
                directory or a parent of it, home or ``/``, lies below a file, or is a device or mount point; or
                it is, holds or lies in the folder this version (or, if ``dest`` exists, the dataset's newest) is
                by reference of, while that version is not materialised (its files there are their only copy).
            UnsafePathError: the version names a path outside ``dest`` (nothing is written).
            IntegrityError: an object is missing from the store or does not match its hash.
        """
        version = self.show(ref)
        entries = self.files(version)
        if paths is not None:
            entries = Tree.build(entries).select(paths)
        single = not version.is_dir
        target = destination(dest, version.pointer.out.path if single else None)
        hint = version.dataset.rpartition("/")[2]
        guard_destination(target, store_root=self._store_root(), cache_dir=self.cache_dir, hint=hint)
        self._guard_sources(version, target)
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
        """Open one file of a version (``path`` inside it; for a single-file version its name or nothing) for
        reading, fetching only that file's object, hash-checked, from the worker cache or the store.

        Raises:
            NotFoundError: the version has no such file (the message says what it has there).
            InputError: ``path`` is a folder of the version.
            IntegrityError: the object is missing from the store or does not match its hash.
        """
        version = self.show(ref)
        entry = self._entry(version, path)
        return open(self.objects.verified(version.ref, entry.md5), "rb")

    def file(self, ref: str | Ref | Version, path: str = "") -> FileEntry:
        """One file of a version (``path`` as :meth:`open` takes it): path, md5 and size, as a :class:`FileEntry`
        to give :meth:`peek` for several reads of that file. The size comes from the record or listing, else the
        worker cache, else one HEAD; ``NotFoundError``/``InputError`` as :meth:`open`, ``IntegrityError`` if the
        object is missing from the store."""
        version = self.show(ref)
        return self.objects.sized(version.ref, self._entry(version, path))

    def dvc_file(self, ref: str | Ref | Version) -> str:
        """The text of the ``.dvc`` file of a version as :meth:`export_dvc` writes it (its data named as the
        version's output: ``images`` for ``images.dvc``); the store's URL in its comment has no credentials."""
        version = self._exportable(self.show(ref))
        return dvc_file_text(version, self.url, version.pointer.out.path)

    def peek(
        self, ref: str | Ref | Version, path: str | FileEntry = "", offset: int = 0, length: int = PEEK_LENGTH
    ) -> bytes:
        """Up to ``length`` bytes of one file of a version from byte ``offset`` (below 0: from the end), without
        fetching the whole file: what ``data[offset:][:length]`` would give, for previews.

        **Not hash-verified** (a range cannot be checked against the md5 of the whole file): for looking at
        data, never for using it; :meth:`open` and :meth:`pull` verify. The bytes come from the worker cache
        when its hash state vouches for the copy, else from one ranged GET (a negative ``offset`` of a file of
        unknown size costs a HEAD first). ``path`` is as :meth:`open` takes it, or a :class:`FileEntry` of the
        version (:meth:`file`, :meth:`files`: the listing is not read again). ``length`` is at most ``PEEK_MAX``
        (16 MiB); ``0`` sends no request for data.

        Raises:
            NotFoundError: the version has no such file (the message says what it has there).
            InputError: ``path`` is a folder; ``offset`` or ``length`` is not a whole number, or ``length`` is
                below 0 or above 16 MiB; a :class:`FileEntry` whose md5 is not one.
            IntegrityError: the object is missing from the store.
        """
        check_peek(offset, length)
        version = self.show(ref)
        entry = path if isinstance(path, FileEntry) else self._entry(version, path)
        return self.objects.peek_file(version.ref, entry, offset, length)

    def _entry(self, version: Version, path: str) -> FileEntry:
        """The file at ``path`` of ``version`` for open, file and peek (see :meth:`.Tree.file`)."""
        return self.objects.tree(version.pointer.out).file(version, path)

    def export_dvc(self, ref: str | Ref | Version, path: str | os.PathLike[str]) -> Path:
        """Write the ``.dvc`` file of a version for a git+DVC project whose remote is this store: ``path`` is the
        file (``repo/images.dvc``) or a directory. Then ``dvc remote add -d store <URL>`` and ``dvc pull``."""
        return write_dvc_file(
            self._exportable(self.show(ref)),
            self.url,
            Path(path).expanduser(),
            store_root=self._store_root(),
            cache_dir=self.cache_dir,
        )

    def materialize(self, ref: str | Ref | Version) -> Version:
        """Copy the files of a version by reference into this store's ``files/md5/``, so that it no longer needs
        its source and :meth:`export_dvc` gives a ``.dvc`` plain DVC can ``dvc pull``. Each file the store lacks
        is copied on the S3 server (``CopyObject``, pinned to its VersionId or ETag, nothing downloaded) when its
        source is on the store's endpoint and credentials and its ETag is its md5, the copy's ETag checked; any
        other is read from the source as a read is (pinned, hash-checked into the worker cache), then uploaded.
        The record does not change (records are immutable). A version not by reference, or already materialised,
        costs one HEAD per file and uploads nothing.

        Raises:
            IntegrityError: a source file no longer holds what was committed (nothing of it is uploaded; what
                was copied before stays, and a later call goes on from there).
        """
        version = self.show(ref)
        md5s = {entry.md5 for entry in self.files(version)}
        missing = sorted(md5s - self.objects.present(md5s))
        if missing:
            with HashState(self.cache_dir) as state:
                copied, streamed = self.objects.materialize(version.ref, missing, state)
            logger.info(
                "materialized %s: %d files copied on the server, %d streamed, into %s",
                version.ref,
                copied,
                streamed,
                self.url,
            )
        return version

    def _exportable(self, version: Version) -> Version:
        """``version``, unless it is by reference and ``files/md5/`` lacks some of its files (``InputError``):
        plain DVC reads only the store, so its ``.dvc`` would name objects a ``dvc pull`` cannot find."""
        if version.reference is not None:
            md5s = {entry.md5 for entry in self.files(version)}
            if self.objects.present(md5s) != md5s:
                raise InputError(
                    f"{version.ref} is versioned by reference (its files stay in {version.reference.source}); run "
                    f"`gitfree materialize {version.ref}` first"
                )
        return version

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
        by_reference: bool = False,
        source_options: SourceOptions | None = None,
    ) -> Version:
        """Commit the file or directory at ``path`` as the next version of ``dataset`` (``images``, ``raw/sales``).

        If the data and the inputs equal the newest version's, that version is returned and nothing is
        written (``force=True`` makes a new one anyway); the same data from other inputs is a new version
        with nothing uploaded. Safe from any number of workers at once: none is lost and no number is given
        twice (docs/design.md, "Commit").

        Args:
            message, metadata: a description, and free JSON kept with the version.
            metrics: name → number, e.g. ``{"rows": 1200}``.
            inputs: versions this one was made from (refs, versions or ``InputRef``).
            author: who made it; default: this user and host.
            commit_id: this attempt's id (default: a new UUID); a retry passing the same id recognises the
                version its earlier attempt created.
            by_reference: version the files where they are instead of uploading them: ``path`` is then an
                ``s3://bucket/prefix/`` (on this store's endpoint and credentials) or a folder every worker
                shares (``file:///…`` or a path). Nothing is uploaded or copied into the worker cache; an
                unchanged source makes no version and reads no object (docs/design.md, "Versions by reference").
            source_options: by reference, how to reach an ``s3://`` source on another endpoint or with other
                credentials than the store's (default: the store's ``source_options``, else ``GITFREE_SOURCE_*``).
                The table records the endpoint, never a credential; readers need options for that endpoint.

        Returns:
            The version holding the data; ``version.created`` is false when the newest version already held
            it (its message and metadata are then not this call's).

        Raises:
            InputError: bad name, or a path that is missing, empty or not committable (by reference: a source
                holding no files, a name a version cannot hold, a source inside the store or the worker cache).
            ConfigError: by reference, a source the credentials cannot list.
            ConflictError: other writers kept winning, or garbage collection holds the store; by reference,
                a source file changed or vanished while it was imported.
        """
        validate_dataset_name(dataset)
        if os.fspath(path) == "":  # Path("") is the current directory: an unset variable or parameter, not a choice
            raise InputError(
                "the path to commit is empty (an unset variable or parameter?): give a file, a folder or, by "
                "reference, a source URL ('.' for the current directory)"
            )
        if source_options is not None and not by_reference:
            raise InputError(
                "source options (an endpoint or credentials of the source's own) are for a commit by reference: "
                "add --by-reference (by_reference=True) or leave them out"
            )
        if by_reference:
            return self._commit_by_reference(
                dataset,
                os.fspath(path),
                self._fields(dataset, message, metadata, metrics, inputs, author, commit_id),
                force,
                source_options,
            )
        source = Path(path).expanduser().absolute()
        check_source(source)  # missing, special or oddly named: before anything else
        guard_source(source, store_root=self._store_root(), cache_dir=self.cache_dir)
        given = [i if isinstance(i, InputRef) else self.show(i) for i in inputs or ()]
        fields = {
            "dataset": dataset,
            "id": commit_id or uuid.uuid4(),
            "message": message,
            "author": author or Author.current(),
            "metadata": dict(metadata or {}),
            "metrics": dict(metrics or {}),
            # Each input once (the same version given twice, or given and noted in the run, is one input).
            "inputs": list(dict.fromkeys(lineage_module.input_of(self.catalog, i) for i in given)),
        }
        parts = (self.catalog, self.objects, self.coordinator)
        return protocol.commit(
            *parts, source=source, fields=fields, force=force, attempts=self.settings.commit_attempts
        )

    def _fields(
        self,
        dataset: str,
        message: str,
        metadata: Mapping[str, JsonValue] | None,
        metrics: Mapping[str, float] | None,
        inputs: Iterable[str | Ref | Version | InputRef] | None,
        author: Author | None,
        commit_id: uuid.UUID | None,
    ) -> dict[str, object]:
        """The record's own fields of a commit by reference (as :meth:`commit` builds them for an upload)."""
        given = [i if isinstance(i, InputRef) else self.show(i) for i in inputs or ()]
        return {
            "dataset": dataset,
            "id": commit_id or uuid.uuid4(),
            "message": message,
            "author": author or Author.current(),
            "metadata": dict(metadata or {}),
            "metrics": dict(metrics or {}),
            "inputs": list(dict.fromkeys(lineage_module.input_of(self.catalog, i) for i in given)),
        }

    def _commit_by_reference(
        self, dataset: str, url: str, fields: dict[str, object], force: bool, options: SourceOptions | None = None
    ) -> Version:
        options = options or self._commit_options
        if options is not None and not url.lower().startswith("s3://") and options is self._commit_options:
            options = None  # the store's (or GITFREE_SOURCE_*) options are for s3:// sources; a folder has none
        source = open_source(url, self.settings, options)
        self._guard_reference(source)
        return protocol.commit_by_reference(
            self.catalog,
            self.objects,
            self.coordinator,
            source=source,
            fields=fields,
            force=force,
            attempts=self.settings.commit_attempts,
        )

    def _guard_reference(self, source: Source) -> None:
        """A source inside this store (which GC owns) or the worker cache cannot be referenced (InputError)."""
        inside = False
        if source.endpoint is not None and (
            not isinstance(self.backend, S3Backend) or source.endpoint != endpoint_id(self.backend.endpoint)
        ):
            pass  # another S3 service than the store's: no overlap
        elif isinstance(source, S3Source) and self.url.startswith("s3://"):
            store = self.url.rstrip("/") + "/"
            inside = store.startswith(source.url) or source.url.startswith(store)
        elif isinstance(source, AzureSource | GCSSource) and self.url.startswith(f"{source.kind}://"):
            store = self.url.rstrip("/") + "/"  # the same service and account (a source takes the store's)
            inside = store.startswith(source.url) or source.url.startswith(store)
        elif isinstance(source, FileSource):
            root = source.root.resolve()
            for place in (self._store_root(), self.cache_dir):
                if place is not None and (
                    root == place.resolve() or place.resolve() in root.parents or root in place.resolve().parents
                ):
                    inside = True
        if inside:
            raise InputError(
                f"the source {source.url} overlaps the store {self.url} or its worker cache, whose files gitfree "
                "owns; reference data kept elsewhere"
            )

    def _guard_sources(self, version: Version, target: Path) -> None:
        """Refuse, even with ``overwrite``, a pull into, around or inside the folder that the pulled version or its
        dataset's newest version is by reference of, unless that version is materialised: the pull would replace
        the files it names, which are its only copy (R1). The newest version is read only for a ``target`` that
        exists (a new folder inside a source adds files and replaces none)."""
        named_ones = {version.id: version}
        if os.path.lexists(target):
            head = self.catalog.head(version.dataset)
            named_ones.update({head.id: head} if head is not None else {})
        for named in named_ones.values():
            if named.reference is None or not named.reference.source.startswith("file://"):
                continue  # an S3 source is no folder a pull writes to
            source = open_source(named.reference.source, self.settings)
            if not isinstance(source, FileSource):
                continue
            how = path_relation(target, source.root, inside_too=True)
            if how is not None and not self._materialized(named):
                raise InputError(
                    f"cannot pull to {target}: it {how} {source.root}, the folder {named.ref} is versioned by "
                    f"reference from, and the pull would replace the files it names (their only copy); pull "
                    f"elsewhere, or run `gitfree materialize {named.ref}` first"
                )

    def _materialized(self, version: Version) -> bool:
        md5s = {entry.md5 for entry in self.files(version)}
        return self.objects.present(md5s) == md5s

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
        """Point ``tag`` at a version. Tags are create-only; ``move=True`` moves one, and with ``expect`` only
        if it is at that version number now (compare-and-swap, as ``git update-ref NEW OLD``). Each write is
        kept in the tag's history (:meth:`tag_history`) with ``message`` and ``author``.

        Returns:
            The tag's record: ``written`` is false when it already pointed there; ``seq`` is this write's place
            in the history.

        Raises:
            ConflictError: the tag exists (and ``move`` is false), is not at ``expect``, or moved meanwhile.
        """
        validate_tag_name(tag)
        return protocol.move_tag(
            self.catalog,
            self.coordinator,
            self.show(ref),
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
        """Delete ``tag`` of ``dataset`` (only if it is at ``expect``, when given); the deletion goes on in the
        tag's history with ``message`` and ``author``. ``dataset@tag`` is then a ``NotFoundError`` saying when
        and by whom, GC no longer keeps its version for it, and a later :meth:`tag` continues the history.

        Returns:
            The deleted marker (``deleted`` true; ``number`` the version the tag pointed at).

        Raises:
            NotFoundError: the tag does not exist or was deleted already.
            ConflictError: the tag is not at ``expect``.
        """
        author = author or Author.current()
        attempts = self.settings.commit_attempts
        return protocol.delete_tag(
            self.catalog, dataset, tag, expect=expect, attempts=attempts, author=author, message=message
        )

    def tag_history(self, dataset: str, tag: str) -> list[TagEvent]:
        """Every creation, move and deletion of ``tag``, oldest first: ``seq`` (1, 2, … with no gaps),
        ``action``, ``previous`` and ``number``, ``created_at``, ``author``, ``message`` and a promotion's
        ``gate``. A tag written before history was kept starts with an event of ``seq`` 0.

        Raises:
            NotFoundError: the dataset has no such tag and never had.
        """
        return promotion.tag_history(self.catalog, dataset, tag)

    def tag_events(self, dataset: str, number: int | None = None) -> list[TagEvent]:
        """Every write of every tag of ``dataset`` (deleted tags too), by tag and then in each history's order;
        with ``number``, only those that moved a tag to or from that version: what a version's page shows. One
        listing of the tags and their histories, then one parallel read. ``NotFoundError`` for no such dataset."""
        return promotion.tag_events(self.catalog, dataset, number)

    def promote(
        self,
        ref: str | Ref | Version,
        stage: str,
        *,
        require: Mapping[str, str] | Iterable[str] | None = None,
        message: str = "",
        author: Author | None = None,
    ) -> Tag:
        """Move the stage tag ``stage`` (``production``) to ``ref`` if its metrics pass ``require``, judged against
        the version the stage names and applied only if the stage has not moved since (compare-and-swap).

        ``require`` maps a metric to a comparison with the holder (``{"accuracy": ">="}``) or a number
        (``{"f1": ">= 0.9"}``), operators ``>=``, ``>``, ``<=``, ``<``, ``==``; ``["accuracy>=", "f1>=0.9"]``
        says the same. With a stage order (:meth:`set_stages`), a version enters a stage only while it holds the
        stage before it. What was compared is kept in the tag's ``gate`` and history (docs/design.md, "Tag moves").

        Raises:
            GateError: a requirement failed (both values shown), a metric is missing, or the previous stage
                is not held.
            InputError: a malformed requirement, an unknown metric (those that exist are listed), or a stage
                not in the stage order.
            ConflictError: the stage moved while the promotion was judged (promote again).
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

    def set_stages(self, dataset: str, stages: Sequence[str] | str, *, author: Author | None = None) -> list[str]:
        """Set the stage order of ``dataset`` (``["dev", "staging", "production"]``) that :meth:`promote`
        follows; ``[]`` removes it. Returns the order in force. ``NotFoundError`` for no such dataset,
        ``InputError`` for a bad or repeated stage name."""
        author = author or Author.current()
        record = promotion.set_stages(
            self.catalog, dataset, _names(stages), author=author, attempts=self.settings.commit_attempts
        )
        return list(record.stages)

    def stages(self, dataset: str) -> list[str]:
        """The stage order of ``dataset`` (empty when none is set)."""
        return promotion.stages(self.catalog, dataset)

    def audit(self, dataset: str, limit: int | None = None) -> list[AuditEvent]:
        """The audit trail of ``dataset``, newest first (at most ``limit``): its commits, the versions garbage
        collection dropped, and every tag creation, move and deletion, each with who (and the orchestrator
        run) and why. Times are each writer's clock; one tag's events are in its history's order."""
        return promotion.audit(self.catalog, dataset, limit)

    # ------------------------------------------------------------------ lineage inside orchestrator runs

    def note_use(self, run: str, ref: str | Ref | Version, *, task: str | None = None) -> bool:
        """Note that a version of this store was used (pulled) in the orchestrator run ``run``
        (``prefect:<flow run id>``, ``airflow:<dag id>:<run id>``; up to 1024 characters), by ``task``.

        A commit in the same run, on any worker, finds it (:meth:`used_in`) and records the version as an
        input (docs/design.md, "Lineage inside orchestrator runs"): one create-only PUT, nothing in memory.
        Best effort: a note that cannot be written is a warning and ``False``; a pull never fails for it.

        Raises:
            InputError: ``run`` is empty, too long or not text.
            NotFoundError: ``ref`` names no version of this store.
        """
        run = lineage_module.checked_run(run)  # before the ref is read
        return lineage_module.note_use(self.catalog, self.show(ref), run, task=task, store_url=self.url)

    def used_in(self, run: str) -> list[InputRef]:
        """The versions of this store noted as used in the run ``run`` (:meth:`note_use`), sorted: what a
        commit in that run was made from. A note counts while the record at its number is still the version
        pulled (or its tombstone); one that cannot be read is skipped with a warning."""
        return lineage_module.used_in(self.catalog, run)

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
        """Drop the versions the retention policy does not keep, then delete gitfree's unreferenced objects.

        Every dataset keeps its newest and tagged versions, the last ``keep_last`` and those younger than
        ``keep_within`` (with neither: every version, and only a crashed commit's uploads go). A dropped version
        leaves a tombstone; objects younger than ``grace`` (default: lease TTL + clock skew) stay; objects
        gitfree did not write (a DVC project's pushes) are counted in ``foreign_objects`` and deleted only with
        ``delete_foreign``. Safe while commits run (docs/design.md, "Garbage collection").

        Raises:
            ConflictError: another GC runs, or commits in flight did not finish uploading in time.
            IntegrityError: a kept version's listing cannot be read; nothing was deleted (run :meth:`fsck`).
        """
        return gc_module.collect(
            *(self.catalog, self.objects, self.coordinator),
            keep_last=keep_last,
            keep_within=keep_within,
            grace=grace,
            dry_run=dry_run,
            delete_foreign=delete_foreign,
        )

    def fsck(self, *, deep: bool = False, repair: bool = False, datasets: Iterable[str] | str = ()) -> FsckReport:
        """Check every version (of ``datasets``, default all): records, listings, objects, tags, hints, edges.

        Objects are proven present by one listing of the store, and their content by the server's ETag where
        it is the md5; ``deep=True`` downloads and hashes every object instead. ``repair=True`` re-uploads
        missing or damaged objects the worker cache holds intact, rewrites edges, then checks again.
        ``report.ok`` tells whether anything is left broken.

        A version by reference needs its table, and its source to hold what it committed: one HEAD (a folder: one
        ``stat``) per source object, or with ``deep=True`` a pinned read re-hashing it. A difference is ``drift``
        on that version (``repair`` cannot fix it: the bytes are not the store's), or only a note in
        ``report.notes`` where ``files/md5/`` holds the file (:meth:`materialize`).
        """
        parts = (self.catalog, self.objects, self.coordinator)
        return fsck_module.run(*parts, deep=deep, repair=repair, datasets=_names(datasets), sources=self._source_of)


def _names(given: Iterable[str] | str) -> list[str]:
    """Names given as a list, or one name as a string: ``"images"`` is ``["images"]``, never its letters."""
    return [given] if isinstance(given, str) else list(given)


def _source_options(
    given: SourceOptions | Mapping[str, SourceOptions] | None,
) -> tuple[dict[str, SourceOptions], SourceOptions | None]:
    """The source options of a store, by the endpoint a reference table records (a mapping's key, or the
    options' own endpoint), and the options a commit by reference uses unless given its own: ``given`` itself
    when it is one :class:`SourceOptions`, else ``GITFREE_SOURCE_*`` (``None`` when unset)."""
    if given is None:
        given = SourceOptions.from_env()
    if given is None:
        return {}, None
    if isinstance(given, SourceOptions):
        return {given.endpoint(): given}, given
    by_endpoint: dict[str, SourceOptions] = {}
    for endpoint, options in given.items():
        if endpoint != AWS_ENDPOINT and options.endpoint_url is None:
            options = options.model_copy(update={"endpoint_url": endpoint})
        by_endpoint[endpoint_id(None if endpoint == AWS_ENDPOINT else endpoint)] = options
    return by_endpoint, None
