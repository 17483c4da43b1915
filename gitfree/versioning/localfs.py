"""Local files: copies done by the kernel, the md5 of a file, and writes that are all or nothing."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["atomic_write", "copy_file", "md5_file"]

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
