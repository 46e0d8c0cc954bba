"""Evaluation datasets: JSONL, one ``{"prompt", "completion", "category"?}`` object per line, as
``ads aqua evaluation create`` reads them.  Every bad row is reported with its line number and field,
all at once, so a user fixes the file in one pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InvalidInput, Problem
from ..safe_files import UntrustedJson, parse_json, read_capped

#: per text field: a prompt longer than this does not fit a small model's context anyway
MAX_FIELD_CHARS = 32_000
MAX_ROWS = 10_000
MAX_BYTES = 64 * 1024 * 1024
SAMPLE = "sample"
ROW_HINT = 'one JSON object per line: {"prompt": "...", "completion": "...", "category": "..."}'


@dataclass(frozen=True)
class Row:
    index: int
    prompt: str
    completion: str
    category: str | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return {"index": self.index, "prompt": self.prompt, "completion": self.completion, "category": self.category}


def parse_dataset(data: bytes, field: str = "dataset_path") -> list[Row]:
    """The rows of a JSONL dataset; :class:`InvalidInput` naming ``<field> line N: <key>`` for every
    bad row (not JSON, not an object, a field missing, empty, of the wrong type or too long)."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(Problem(field, f"the dataset is {len(data)} bytes", f"keep it under {MAX_BYTES} bytes"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            Problem(
                f"{field} line {line}",
                f"not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})",
                "save the file as UTF-8",
            )
        ) from None
    problems: list[Problem] = []
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{field} line {number}"
        try:
            obj = parse_json(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(where, f"not JSON ({exc.msg} at column {exc.colno})", ROW_HINT))
            continue
        except UntrustedJson as exc:
            problems.append(Problem(where, str(exc), ROW_HINT))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(where, f"a JSON {type(obj).__name__}, not an object", ROW_HINT))
            continue
        bad = False
        for key, required in (("prompt", True), ("completion", True), ("category", False)):
            value = obj.get(key)
            if value is None:
                if required:
                    problems.append(Problem(f"{where}: {key}", "missing", f'add "{key}": "..." to the object'))
                    bad = True
            elif not isinstance(value, str):
                problems.append(Problem(f"{where}: {key}", f"must be a string, not {type(value).__name__}"))
                bad = True
            elif required and not value.strip():
                problems.append(Problem(f"{where}: {key}", "empty", "give it some text or remove the row"))
                bad = True
            elif len(value) > MAX_FIELD_CHARS:
                problems.append(
                    Problem(f"{where}: {key}", f"{len(value)} characters", f"keep it under {MAX_FIELD_CHARS}")
                )
                bad = True
            elif (at := _lone_surrogate(value)) is not None:
                # not text: a model cannot be sent it and a report cannot be written with it
                problems.append(
                    Problem(
                        f"{where}: {key}",
                        f"a lone UTF-16 surrogate ({ord(value[at]):#x}) at character {at}",
                        "remove it, or write the character it was meant to be",
                    )
                )
                bad = True
        if not bad:
            rows.append(Row(len(rows), obj["prompt"], obj["completion"], obj.get("category")))
    if not rows and not problems:
        problems.append(Problem(field, "the dataset has no rows", ROW_HINT))
    if len(rows) > MAX_ROWS:
        problems.append(Problem(field, f"{len(rows)} rows", f"evaluate at most {MAX_ROWS} rows at a time"))
    if problems:
        raise InvalidInput(problems)
    return rows


def sample_path() -> Path:
    return Path(str(resources.files("aqua_lab.evaluation") / "data" / "sample.jsonl"))


def load_dataset(path: str, field: str = "dataset_path") -> list[Row]:
    """Rows from a local file (``sample`` is the bundled dataset): a regular file of at most
    :data:`MAX_BYTES`, checked before it is read (no device, FIFO or symlink loop)."""
    fix = f"give a .jsonl file, or {SAMPLE!r} for the bundled one"
    data = read_capped(sample_path() if path == SAMPLE else path, field, MAX_BYTES, "the dataset", fix)
    return parse_dataset(data, field)


def _lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds half a UTF-16 pair (JSON's ``"\\ud800"``), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None
