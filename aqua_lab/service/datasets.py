"""Datasets a user grows from their own chats: "Save as dataset row" appends ``{prompt, completion,
category?}`` to a named JSONL file under the data dir's ``datasets/`` folder, beside uploaded ones, so
the prompts a user actually cares about become the next evaluation's ``dataset_path``.

Each row is checked by the evaluation's own rules (:func:`~aqua_lab.evaluation.datasets.parse_dataset`
on the new line), so a saved dataset is always one an evaluation accepts; the file stays under the
evaluation's caps (``MAX_BYTES``, ``MAX_ROWS``).  An append writes a whole new file and renames it over
the old one under a lock on the folder: a reader (an evaluation starting) sees the file before or
after the row, never half of it, and two saves at once both land."""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field

from .. import disk_space
from ..errors import InvalidInput, NotFound, Problem, shown
from ..evaluation import datasets
from ..safe_files import read_capped, size_text

NAME_CHARS = 60
_NAME = re.compile(rf"^[A-Za-z0-9_-][A-Za-z0-9._-]{{0,{NAME_CHARS - 1}}}$")
#: an upload is stored as ``<stem>-<16 hex digits of its content's hash>.jsonl``: its content never changes
_UPLOAD = re.compile(r"-[0-9a-f]{16}$")
NAME_FIX = f"use letters, digits, '.', '_' and '-' (not first: '.'), at most {NAME_CHARS} characters"


class DatasetRow(BaseModel):
    """One row to save: the prompt, the answer kept as the reference (chosen or edited), a category."""

    prompt: str = Field(description="the prompt, as sent to the models")
    completion: str = Field(description="the reference answer: the answer chosen, or edited")
    category: str | None = Field(None, description="optional: rows are scored per category in the report")


class SavedDataset(BaseModel):
    name: str = Field(description="the dataset's name (its file: <name>.jsonl)")
    dataset_path: str = Field(description="give this as an evaluation's dataset_path")
    rows: int
    bytes: int
    categories: dict[str, int] = Field(default_factory=dict, description="rows per category ('' for none)")
    note: str | None = Field(None, description="why the file is not a usable dataset now, if it is not")


def dataset_name(name: str, field: str = "name") -> str:
    """``name`` without a ``.jsonl`` ending, refused unless it is a plain file name."""
    stem = name[: -len(".jsonl")] if name.lower().endswith(".jsonl") else name
    if not _NAME.match(stem):
        what = "empty" if not stem else f"{shown(name)} is not a dataset name"
        raise InvalidInput(Problem(field, what, NAME_FIX))
    return stem


def add_row(directory: Path, name: str, row: DatasetRow) -> SavedDataset:
    """Append ``row`` to the dataset ``name`` (made on first use); the dataset as it is now."""
    name = dataset_name(name)
    if _UPLOAD.search(name):
        raise InvalidInput(
            Problem("name", f"{shown(name)} is an uploaded dataset, kept as sent", "save to another name")
        )
    obj = {"prompt": row.prompt, "completion": row.completion}
    if row.category and row.category.strip():
        obj["category"] = row.category
    # ASCII escapes: no character (U+2028, a lone surrogate) can split the line or slip past the check
    line = json.dumps(obj).encode("ascii") + b"\n"
    _check_row(line)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{name}.jsonl"
    with _locked(directory):
        old = read_capped(path, "name", datasets.MAX_BYTES, f"dataset {name!r}") if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        _check_caps(name, old, len(line))
        disk_space.write_whole(path, old + line)
    return _described(path)


def _check_row(line: bytes) -> None:
    """The row by the evaluation's rules, each problem on the request's own field (``prompt``)."""
    try:
        datasets.parse_dataset(line, field="row")
    except InvalidInput as exc:
        raise InvalidInput(
            [
                Problem(
                    p.field.split(": ", 1)[1] if ": " in p.field else p.field,
                    p.message,
                    "give it some text" if p.message == "empty" else p.fix,
                )
                for p in exc.problems
            ]
        ) from None


def _check_caps(name: str, old: bytes, adding: int) -> None:
    fix = "save to a new dataset name"
    if len(old) + adding > datasets.MAX_BYTES:
        raise InvalidInput(
            Problem(
                "name",
                f"dataset {name!r} is {size_text(len(old))}; with this row it would pass the limit of "
                f"{size_text(datasets.MAX_BYTES)}",
                fix,
            )
        )
    rows = sum(1 for raw in old.splitlines() if raw.strip())
    if rows >= datasets.MAX_ROWS:
        raise InvalidInput(
            Problem(
                "name", f"dataset {name!r} has {rows} rows, the most an evaluation takes ({datasets.MAX_ROWS})", fix
            )
        )


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """The folder locked against other saves (threads, the CLI, another server) until the rename."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _described(path: Path) -> SavedDataset:
    name = path.name[: -len(".jsonl")]
    size = path.stat().st_size
    try:
        rows = datasets.parse_dataset(read_capped(path, "name", datasets.MAX_BYTES, f"dataset {name!r}"))
    except InvalidInput as exc:  # an upload or a file edited by hand: listed, with why it cannot be used
        return SavedDataset(name=name, dataset_path=str(path), rows=0, bytes=size, note=str(exc))
    categories = Counter(r.category or "" for r in rows)
    return SavedDataset(
        name=name, dataset_path=str(path), rows=len(rows), bytes=size, categories=dict(sorted(categories.items()))
    )


def list_datasets(directory: Path) -> list[SavedDataset]:
    """Every dataset in the folder, saved or uploaded, by name."""
    if not directory.is_dir():
        return []
    found = sorted(p for p in directory.glob("*.jsonl") if p.is_file() and not p.is_symlink())
    return [_described(p) for p in found]


def dataset_text(directory: Path, name: str) -> str:
    """The whole JSONL file of the dataset ``name`` (a download)."""
    name = dataset_name(name)
    path = directory / f"{name}.jsonl"
    if not path.is_file():
        raise NotFound("dataset", name, "list them: GET datasets, or aqua-lab dataset list")
    return read_capped(path, "name", datasets.MAX_BYTES, f"dataset {name!r}").decode("utf-8", "replace")
