"""Datasets sent from a browser: checked row by row like any dataset, then kept on the server's machine
under a name made of their content's hash, so the same file sent twice is stored once and an
evaluation's ``dataset_path`` never points at a file that changes under it."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from .. import disk_space
from ..errors import InvalidInput, Problem
from .datasets import parse_dataset


def _stem(filename: str) -> str:
    base = re.split(r"[\\/]", filename)[-1]
    stem = base[: -len(".jsonl")] if base.lower().endswith(".jsonl") else base
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:60] or "dataset"


def store_upload(directory: Path, filename: str, content: str) -> tuple[Path, int, dict[str, int]]:
    """Validate ``content`` (``content line N: field`` for every bad row) and write it to
    ``directory``; (path, rows, rows per category)."""
    if not filename.lower().endswith(".jsonl"):
        raise InvalidInput(Problem("filename", f"{filename!r} is not a .jsonl file", "send a .jsonl file"))
    # a lone surrogate ("\ud800" in the request's JSON) stays invalid UTF-8, which parse_dataset
    # refuses as a 422 naming its line, instead of an encode error (500) here
    data = content.encode("utf-8", "surrogatepass")
    rows = parse_dataset(data, field="content")
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = directory / f"{_stem(filename)}-{digest}.jsonl"
    if not path.exists():
        disk_space.write_whole(path, data)
    categories = Counter(r.category or "" for r in rows)
    return path, len(rows), dict(sorted(categories.items()))
