"""Local file copies, done by the kernel."""

from __future__ import annotations

import errno
import os
import shutil

__all__ = ["copy_file"]

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
