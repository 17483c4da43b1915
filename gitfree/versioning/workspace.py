"""The DVC side: a temporary ``dvc init --no-scm`` workspace over the worker cache and the store.

This is the only module that imports DVC; DVC's types do not leave it.

- :func:`stage` hashes a source path (reusing hashes from a persistent state, keyed by
  path, inode, size and mtime) and adds its objects to the worker cache.
- :meth:`Workspace.push` uploads what the store lacks and proves that every object of
  the version is there.
- :meth:`Workspace.fetch` downloads objects into the worker cache; DVC verifies their
  hashes on the way (a corrupted object is dropped, and reported by the caller).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .errors import ConfigError, GitfreeError, IntegrityError
from .layout import object_key
from .models import Output

if TYPE_CHECKING:
    from dvc.repo import Repo
    from dvc_data.hashfile.state import State

__all__ = ["HashState", "Staged", "Workspace", "stage"]

logger = logging.getLogger(__name__)


def _quiet_dvc() -> None:
    """A library must not print. ``Repo.init`` logs "Initialized DVC repository." to DVC's console
    handler, and dvc-data draws tqdm bars on a terminal unless its ``callbacks`` logger is above
    ERROR; silence exactly those two loggers (gitfree reports progress through its own callbacks)."""
    logging.getLogger("dvc.repo.init").setLevel(logging.WARNING)
    logging.getLogger("dvc_data.callbacks").setLevel(logging.CRITICAL)


class HashState:
    """Known hashes of local files, keyed by path and checked against inode, size and mtime.

    Shared by every commit and pull of a worker cache, so an unchanged file is never
    hashed twice (DVC's own state is keyed by workspace, and workspaces are temporary).
    """

    def __init__(self, cache_dir: Path) -> None:
        from dvc_data.hashfile.state import State

        self._state: State = State(root_dir=None, tmp_dir=str(cache_dir / "state"))

    @property
    def dvc(self) -> State:
        return self._state

    def known(self, paths: list[str]) -> dict[str, str]:
        """The md5 of each path whose state entry is still valid."""
        from dvc_objects.fs.local import LocalFileSystem

        fs = LocalFileSystem()
        infos = {}
        for path in paths:
            with contextlib.suppress(OSError):
                infos[path] = fs.info(path)
        return {
            path: hash_info.value
            for path, _meta, hash_info in self._state.get_many(list(infos), fs, infos)
            if hash_info is not None and hash_info.name == "md5" and hash_info.value
        }

    def remember(self, items: Iterable[tuple[str, str]]) -> None:
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_objects.fs.local import LocalFileSystem

        self._state.save_many(((path, HashInfo("md5", md5), None) for path, md5 in items), LocalFileSystem())

    def close(self) -> None:
        self._state.close()


@dataclass(frozen=True)
class Staged:
    """Data hashed and present in the worker cache, ready to push."""

    out: Output
    oids: frozenset[str]
    """Every object of the version: the ``.dir`` listing (for a directory) and each file."""


def stage(
    source: Path, out_path: str, cache_dir: Path, state: HashState, callback: Callback = DEFAULT_CALLBACK
) -> Staged:
    """Hash ``source`` (a file or directory) and add its objects to the worker cache at ``cache_dir``."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_data.hashfile.transfer import transfer
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.fs.local import LocalFileSystem

    _quiet_dvc()
    fs = LocalFileSystem()
    cache = HashFileDB(fs, str(cache_dir / "files" / "md5"), state=state.dvc)
    staging, meta, obj = build(cache, str(source), fs, "md5", state=state.dvc, callback=callback)
    transfer(staging, cache, {obj.hash_info}, hardlink=False, shallow=False, verify=False)
    oid = obj.hash_info.value
    if not oid:
        raise IntegrityError(f"DVC computed no hash for {source}")
    if isinstance(obj, Tree):
        oids = {oid, *(hi.value for _, _, hi in obj if hi is not None and hi.value)}
        out = Output(md5=oid, size=meta.size or 0, nfiles=meta.nfiles or 0, path=out_path)
    else:
        oids = {oid}
        out = Output(md5=oid, size=meta.size or 0, path=out_path)
    return Staged(out=out, oids=frozenset(oids))


class Workspace:
    """``dvc init --no-scm`` in a temporary directory, with the worker cache and the store as remote.

    The remote's credentials live only in memory (DVC's config override), never on disk.
    The directory is removed on exit, also on failure.
    """

    REMOTE = "store"

    def __init__(self, cache_dir: Path, remote: dict[str, Any], jobs: int | None = None) -> None:
        self.cache_dir = cache_dir
        self._remote = remote
        self.jobs = jobs
        self._tmp: str | None = None
        self._repo: Repo | None = None

    def __enter__(self) -> Workspace:
        from dvc.repo import Repo

        self._tmp = tempfile.mkdtemp(prefix="gitfree-ws-")
        try:
            _quiet_dvc()
            Repo.init(self._tmp, no_scm=True)
            config = {
                "core": {"remote": self.REMOTE, "no_scm": True, "analytics": False, "check_update": False},
                "cache": {"dir": str(self.cache_dir)},
                "remote": {self.REMOTE: dict(self._remote)},
            }
            self._repo = Repo(self._tmp, config=config)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            raise RuntimeError("use Workspace as a context manager")
        return self._repo

    def _remote_odb(self) -> Any:
        from dvc.config import RemoteConfigError

        try:
            return self.repo.cloud.get_remote_odb(self.REMOTE)
        except RemoteConfigError as exc:
            raise ConfigError(f"DVC cannot use the store as a remote: {exc}") from None

    def _transfer(self, src: Any, dest: Any, oids: Iterable[str], callback: Callback, **kwargs: Any) -> set[str]:
        """Transfer objects; return the oids that failed."""
        from dvc_data.hashfile.hash_info import HashInfo

        hash_infos = {HashInfo("md5", oid) for oid in oids}
        try:
            result = self.repo.cloud.transfer(src, dest, hash_infos, jobs=self.jobs, callback=callback, **kwargs)
        except GitfreeError:
            raise
        except Exception as exc:
            raise _translate_dvc(exc) from exc
        return {hi.value for hi in result.failed if hi.value}

    def push(self, staged: Staged, callback: Callback = DEFAULT_CALLBACK) -> None:
        """Upload the objects of ``staged`` the store lacks, then prove they are all there."""
        remote = self._remote_odb()
        cache = self.repo.cache.local
        # Files first, then the .dir listing: a reader that finds the listing finds its files.
        files = staged.oids - {staged.out.md5} if staged.out.is_dir else staged.oids
        failed = self._transfer(cache, remote, files, callback, shallow=False, hardlink=False)
        if staged.out.is_dir and not failed:
            failed |= self._transfer(cache, remote, {staged.out.md5}, DEFAULT_CALLBACK, shallow=True)
        if failed:
            raise GitfreeError(
                f"{len(failed)} object(s) failed to upload to {self._remote['url']}; nothing was committed, retry"
            )
        missing = self.missing_on_remote(staged.oids)
        if missing:
            raise IntegrityError(
                f"{len(missing)} uploaded object(s) are not on {self._remote['url']} "
                f"(e.g. {object_key(sorted(missing)[0])}); nothing was committed, retry"
            )

    def missing_on_remote(self, oids: Iterable[str]) -> set[str]:
        remote = self._remote_odb()
        try:
            present = set(remote.oids_exist(list(oids), jobs=self.jobs))
        except Exception as exc:
            raise _translate_dvc(exc) from exc
        return set(oids) - present

    def fetch(self, oids: Iterable[str], callback: Callback = DEFAULT_CALLBACK) -> set[str]:
        """Download ``oids`` into the worker cache, verifying each; return those that failed."""
        remote = self._remote_odb()
        return self._transfer(remote, self.repo.cache.local, set(oids), callback, verify=True, shallow=True)


def _translate_dvc(exc: Exception) -> GitfreeError:
    """DVC and its filesystems raise botocore/aiobotocore and OS errors; say what they mean."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "nosuchbucket" in lowered or "bucket does not exist" in lowered:
        return ConfigError("the store's bucket does not exist: create it, or fix the store URL")
    if any(
        word in lowered for word in ("accessdenied", "signaturedoesnotmatch", "invalidaccesskeyid", "forbidden", "403")
    ):
        return ConfigError("the S3 server denied access to the store's objects: check the credentials")
    if "nocredentials" in lowered or "unable to locate credentials" in lowered:
        return ConfigError(
            "no S3 credentials found: set GITFREE_ACCESS_KEY_ID and GITFREE_SECRET_ACCESS_KEY or an AWS profile"
        )
    logger.debug("DVC transfer failed", exc_info=exc)
    return GitfreeError(f"a transfer between the worker cache and the store failed ({type(exc).__name__}); retry")
