"""Local files: copies done by the kernel, the md5 of a file, and writes that are all or nothing."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write", "copy_file", "md5_file", "owned_name", "owner_stamp", "sweep_leftovers"]

LEFTOVER_AGE = 24 * 3600.0
"""A temporary file no one has written to for this long (seconds) is a leftover, whoever made it."""

_CHUNK = 1 << 20

_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ETXTBSY, errno.EPERM}
"""``copy_file_range`` refuses (other file system, old kernel, special file): copy another way."""


def copy_file(src: str, dst: str) -> None:
    """Copy a file inside the kernel: ``copy_file_range`` (a reflink or a server-side copy where the
    file system offers one), else ``shutil.copyfile``. The target must not exist yet."""
    fin = os.open(src, os.O_RDONLY)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            left = os.fstat(fin).st_size
            while left > 0:
                try:
                    copied = os.copy_file_range(fin, fout, left)
                except OSError as exc:
                    if exc.errno not in _NO_COPY_RANGE:
                        raise
                    os.close(fout)
                    fout = -1
                    os.unlink(dst)
                    shutil.copyfile(src, dst)
                    return
                if not copied:
                    break
                left -= copied
        finally:
            if fout >= 0:
                os.close(fout)
    finally:
        os.close(fin)


def md5_file(path: str | os.PathLike[str]) -> str:
    """The md5 of a file's content, read in 1 MiB chunks (raises ``OSError``)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: into a temporary file beside it (``NAME.<random>.tmp``,
    which cache sweeps recognise), then renamed over it. Makes the parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


_OWNER = re.compile(r"\.gfo-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-(?P<start>[0-9]+)-[0-9a-f]{8}")
"""The owner stamp of a temporary file: a hash of the host name, the writer's pid and its start time."""


def _host() -> str:
    return hashlib.md5(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


def _started(pid: int) -> int:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), 0 where that cannot be told."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    try:
        return int(stat[stat.rindex(b")") + 2 :].split()[19])  # field 22: after the name, which may hold spaces
    except (ValueError, IndexError):
        return 0


def owner_stamp() -> str:
    """``.gfo-<host>-<pid>-<start>-<random>``: put in a temporary file's name, it says who writes it, so
    :func:`sweep_leftovers` can tell the file of a live writer from that of a killed one."""
    pid = os.getpid()
    return f".gfo-{_host()}-{pid}-{_started(pid)}-{uuid.uuid4().hex[:8]}"


def owned_name(stem: str, suffix: str = ".tmp") -> str:
    """A temporary file name with an :func:`owner_stamp`: ``STEM.gfo-…SUFFIX``."""
    return f"{stem}{owner_stamp()}{suffix}"


def _alive(pid: int, start: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return not start or _started(pid) in (0, start)  # a pid reused by a later process is not the writer


def leftover(name: str, idle: float, max_age: float = LEFTOVER_AGE) -> bool:
    """Whether the temporary file ``name``, last written ``idle`` seconds ago, is one no live process writes:
    its writer (by its owner stamp) ran on this host and is gone, or it was not written for ``max_age``
    (a writer on another host of a shared file system, or a file without a stamp)."""
    if idle > max_age:
        return True
    owner = _OWNER.search(name)
    if owner is None or owner["host"] != _host():
        return False
    return not _alive(int(owner["pid"]), int(owner["start"]))


def sweep_leftovers(paths: Iterable[Path], max_age: float = LEFTOVER_AGE, *, only_idle: bool = False) -> list[Path]:
    """Delete those of ``paths`` (temporary files) that are :func:`leftover` (``only_idle``: that were not
    written for ``max_age``, whatever their name); returns the deleted ones. A file gone meanwhile (its
    writer renamed it into place) is passed over."""
    now = time.time()
    removed = []
    for path in paths:
        try:
            idle = now - path.stat().st_mtime
            if idle > max_age or (not only_idle and leftover(path.name, idle, max_age)):
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed
