"""Files and folders opened on a user's behalf (datasets, report folders, model folders and their
headers), checked before anything is read.

The server runs inside the user's own Jupyter server: a path that names ``/dev/zero`` must not be
read into memory, a FIFO must not block a thread for ever, a symlink loop must not surface as a
``RuntimeError``, and a file's content — JSON nested 100 000 deep, a 5 000-digit number — must
not reach a parser that answers with a ``RecursionError``.  So every reader here:

* stats the path first and refuses anything but a regular file (FIFOs, devices, sockets) or, for
  folders, a directory; ``/proc``, ``/sys`` and ``/dev`` are refused outright;
* opens with ``O_NONBLOCK`` (a FIFO swapped in after the check still cannot block the open) and
  checks with ``fstat`` that it opened what it checked;
* reads at most the caller's cap plus one byte.

Errors are :class:`~aqua_lab.errors.InvalidInput` naming the caller's field, so every front
answers a 422 (or a one-line CLI error) that says what the path is and what to give instead.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InvalidInput, Problem, shown

#: pseudo file systems: their files claim size 0 and never end, or are the machine's own insides
PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
#: JSON read from a user's file nests at most this deep (real configs and headers nest 3–5 levels)
MAX_JSON_DEPTH = 64

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
    stat.S_IFREG: "a file",
}


def size_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def expanded(path: str | os.PathLike[str], field: str) -> Path:
    """``path`` with ``~`` expanded and made absolute, symlinks resolved without raising on a loop
    (``Path.resolve`` raises a RuntimeError there); an empty path is refused instead of meaning the
    server's working directory."""
    text = os.fspath(path)
    if not text.strip():
        raise InvalidInput(Problem(field, "empty", "give a path on the server's machine"))
    home = os.path.expanduser(text)
    if home.startswith("~"):  # ~name of no user: left as it is, it would be a folder named "~name" here
        user = home.split("/", 1)[0]
        raise InvalidInput(
            Problem(field, f"{shown(text)}: no user {shown(user[1:])} to expand {user}", "give a full path")
        )
    try:
        resolved = Path(os.path.realpath(home))
    except ValueError:  # a NUL character: the OS cannot take such a path
        raise InvalidInput(Problem(field, f"{shown(text)} is not a valid path", "remove the NUL character")) from None
    root = next((r for r in PSEUDO_ROOTS if resolved == Path(r) or Path(r) in resolved.parents), None)
    if root is not None:
        raise InvalidInput(
            Problem(field, f"{shown(text)} is under {root}, the system's own files", "give a path of your own files")
        )
    return resolved


def _stat(path: Path, field: str, shown_as: str, fix: str | None) -> os.stat_result | None:
    """The path's status (symlinks followed); None when it does not exist."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInput(Problem(field, f"{shown_as} is a symlink loop", fix)) from None
        if exc.errno == errno.ENOTDIR:
            return None
        raise InvalidInput(Problem(field, f"cannot use {shown_as}: {exc.strerror}", fix)) from None


def _existing(path: str | os.PathLike[str], field: str, fix: str | None, folder: bool) -> tuple[Path, os.stat_result]:
    shown_as = shown(os.fspath(path), tail=True)
    resolved = expanded(path, field)
    st = _stat(resolved, field, shown_as, fix)
    if st is None:
        raise InvalidInput(Problem(field, f"no {'folder' if folder else 'file'} {shown_as}", fix))
    if not (stat.S_ISDIR if folder else stat.S_ISREG)(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "an unknown kind of file")
        wanted = "a directory" if folder else "a regular file"
        raise InvalidInput(Problem(field, f"{shown_as} is {kind}, not {wanted}", fix))
    return resolved, st


def regular_file(path: str | os.PathLike[str], field: str, fix: str | None = None) -> tuple[Path, os.stat_result]:
    """The resolved path of an existing regular file, and its status; refused otherwise."""
    return _existing(path, field, fix, folder=False)


@contextmanager
def open_regular(path: str | os.PathLike[str], field: str, fix: str | None = None) -> Iterator[io.BufferedReader]:
    """A regular file opened for reading; never blocks (a FIFO swapped in after the check is
    opened non-blocking and refused by ``fstat``)."""
    resolved, before = regular_file(path, field, fix)
    shown_as = shown(os.fspath(path), tail=True)
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput(Problem(field, f"cannot open {shown_as}: {exc.strerror}", fix)) from None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            raise InvalidInput(Problem(field, f"{shown_as} changed while it was being opened", "try again"))
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_capped(path: str | os.PathLike[str], field: str, cap: int, what: str, fix: str | None = None) -> bytes:
    """The whole of a regular file of at most ``cap`` bytes (``what`` names it in the refusal)."""
    with open_regular(path, field, fix) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(cap + 1) if size <= cap else b""
        if size > cap or len(data) > cap:
            raise InvalidInput(
                Problem(
                    field,
                    f"{what} is {size_text(max(size, len(data)))}; the limit is {size_text(cap)}",
                    fix or f"give {what} of at most {size_text(cap)}",
                )
            )
    return data


class CappedReader:
    """A binary file whose reads stop at ``cap`` bytes in all (seeks are free): a header parser
    walking a crafted file cannot be made to read gigabytes of it."""

    def __init__(self, f: io.BufferedReader, cap: int, field: str, what: str):
        self.f, self.cap, self.field, self.what, self.taken = f, cap, field, what, 0

    def read(self, n: int) -> bytes:
        self.taken += n
        if self.taken > self.cap:
            raise InvalidInput(
                Problem(self.field, f"{self.what} is over {size_text(self.cap)}", "is this a damaged file?")
            )
        return self.f.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()


def directory(path: str | os.PathLike[str], field: str, fix: str | None = None) -> Path:
    """The resolved path of an existing directory (a model folder); refused otherwise."""
    return _existing(path, field, fix, folder=True)[0]


def writable_directory(path: str | os.PathLike[str], field: str) -> Path:
    """Where files may be written: an existing writable directory, or a path whose nearest existing
    ancestor is one (the folder is made later).  Checked now, so that a run does not fail at its
    end, when its work is done, for a folder it cannot write."""
    shown_as = shown(os.fspath(path), tail=True)
    fix = "give a folder you can write to"
    resolved = expanded(path, field)
    probe = resolved
    while (st := _stat(probe, field, shown_as, fix)) is None:
        probe = probe.parent
    if not stat.S_ISDIR(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "a file")
        where = shown_as if probe == resolved else f"{shown(str(probe), tail=True)} (in {shown_as})"
        raise InvalidInput(Problem(field, f"{where} is {kind}, not a directory", fix))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidInput(Problem(field, f"{shown(str(probe), tail=True)} is not writable", fix))
    return resolved


# JSON from a user's file ---------------------------------------------------------------------------


class UntrustedJson(ValueError):
    """JSON that Python's parser cannot safely take: too deep, a number past the int-digit limit,
    not UTF-8.  Its message says which, for the caller to put on its field."""


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests deeper than ``limit`` (level by level, without recursion)."""
    level, depth = [value], 0
    while level := [v for v in level if isinstance(v, dict | list)]:
        depth += 1
        if depth > limit:
            return True
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v)]
    return False


def parse_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for content a user controls.  Syntax errors stay :class:`json.JSONDecodeError`
    (with their line and column); hostile content is :class:`UntrustedJson` instead of the
    ``RecursionError`` or the int-digit ``ValueError`` Python raises."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UntrustedJson(f"not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})") from None
    try:
        value = json.loads(data)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise UntrustedJson(f"nested more than {max_depth} levels deep") from None
    except ValueError:  # the only other one json raises: an integer past Python's digit limit
        limit = sys.get_int_max_str_digits()
        raise UntrustedJson(f"has a number of more than {limit} digits (Python's limit for whole numbers)") from None
    if nested_deeper(value, max_depth):
        raise UntrustedJson(f"nested more than {max_depth} levels deep")
    return value


def load_json_file(path: str | os.PathLike[str], field: str, cap: int, what: str) -> Any:
    """A JSON file of at most ``cap`` bytes, parsed as :func:`parse_json` does; every problem is an
    :class:`InvalidInput` on ``field`` naming ``what`` (the file)."""
    data = read_capped(path, field, cap, what)
    try:
        return parse_json(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            Problem(field, f"{what} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", "repair the file")
        ) from None
    except UntrustedJson as exc:
        raise InvalidInput(Problem(field, f"{what}: {exc}", "repair the file")) from None
