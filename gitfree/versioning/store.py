"""The :class:`Store`: commit, pull, log, show, diff, tag and export dataset versions.

The public facade over the parts of a store (docs/design.md, "Module map"): the :class:`.Catalog` of
records, tags and hints; the :class:`.Objects` of the worker cache and the store's ``files/md5/``; the
:class:`.Coordinator` of leases and the GC lock; and the ordered write protocols of :mod:`.protocol`.
"""

from __future__ import annotations

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
from . import protocol
from .backends import Backend, FileBackend, open_backend
from .catalog import Catalog
from .checkout import destination, guard_destination, guard_source, pull_into, write_dvc_file
from .config import StoreSettings
from .errors import GitfreeError, InputError, NotFoundError
from .leases import Coordinator
from .models import Author, Diff, DiffEntry, FileEntry, FsckReport, GcReport, InputRef, RunNote, Tag, Version, utcnow
from .objects import TRANSFER_JOBS, Objects, ProgressFactory
from .refs import Ref, validate_dataset_name, validate_tag_name
from .staging import HashState, check_source
from .tree import Tree, changes, validate_entries

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

    def log(self, dataset: str, limit: int | None = None) -> list[Version]:
        """The versions of a dataset, newest first (at most ``limit``).

        Versions garbage collection dropped are not listed; a record that cannot be read is skipped
        with a warning (``gitfree fsck`` names it).
        """
        return self.catalog.log(dataset, limit)

    def datasets(self) -> list[str]:
        """The names of every dataset in the store, sorted."""
        return self.catalog.datasets()

    def tags(self, dataset: str) -> list[Tag]:
        """The tags of a dataset, sorted by name."""
        return self.catalog.tags(dataset)

    # ------------------------------------------------------------------ files of a version

    def files(self, ref: str | Ref | Version, *, sizes: bool = False) -> list[FileEntry]:
        """The files of a version: path and md5, and with ``sizes=True`` each file's size.

        Sizes come from the worker cache where it holds the object, else from the store (one
        request per object), so ask for them only when you need them.
        """
        version = self.show(ref)
        entries = self.objects.files(version.pointer.out)
        validate_entries(entries)
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

    def diff(self, old: str | Ref, new: str | Ref) -> Diff:
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
            return item
        version = self.show(item)
        return InputRef(dataset=version.dataset, number=version.number)

    def _store_root(self) -> Path | None:
        return self.backend.root if isinstance(self.backend, FileBackend) else None

    def tag(self, ref: str | Ref | Version, tag: str, *, move: bool = False, expect: int | None = None) -> Tag:
        """Point ``tag`` at a version. Tags are create-only; ``move=True`` moves an existing one.

        Args:
            expect: with ``move``, the version number the caller believes the tag is at; the move
                fails if it is elsewhere (compare-and-swap, as ``git update-ref NEW OLD``).

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
        )

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
