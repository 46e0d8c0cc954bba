"""Telling a full disk from other write failures, and saying how full it is.

A full disk is not damage: the state file and every upload are fine once space is freed, so the user
must hear "disk full" and how much is needed — never advice that throws state away.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import DiskFull

#: errno values that mean "no room", whatever the file system calls it
NO_ROOM = {errno.ENOSPC, errno.EDQUOT}


def free_bytes(directory: str | os.PathLike) -> int | None:
    """Bytes this process may still write where ``directory`` lives (0 when out of inodes); None when
    unknown.  A missing directory is measured at its nearest existing parent."""
    path = Path(directory)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    if st.f_files and not st.f_favail:  # no inode left: not even an empty file can be made
        return 0
    return st.f_bavail * st.f_frsize


def disk_full(directory: str | os.PathLike, needed_bytes: int) -> DiskFull:
    return DiskFull(str(directory), free_bytes(directory) or 0, needed_bytes)


def is_no_room(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_ROOM


def write_whole(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a partial file renamed at the end, so a reader never sees half
    a file; a write that fails leaves no partial file behind, and for want of space says "disk full"
    with what it needs.  ``mode`` holds from the first byte (the file may hold a key)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "wb") as f:
            f.write(data)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if is_no_room(exc):
            raise disk_full(path.parent, len(data)) from None
        raise
