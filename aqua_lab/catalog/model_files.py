"""Architecture facts read from a model's files on disk: a Hugging Face folder's ``config.json``
and the headers of its safetensors files (exact weight bytes; no tensor is loaded).  GGUF headers
are read by the local platform (``platforms/local/models.py``), which owns that format.

These files are the user's and may be anything: each is checked and read with a cap
(:mod:`aqua_lab.safe_files`), and what it says is checked before it is believed, so a broken
folder is an :class:`~aqua_lab.errors.InvalidInput` naming the file and what is wrong in it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..domain import Architecture
from ..errors import InvalidInput, Problem
from ..planning.architectures import from_hf_config, safetensors_totals
from ..safe_files import directory, load_json_file, open_regular, parse_json, size_text

#: a model's ``config.json`` (real ones are a few KiB)
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: ``model.safetensors.index.json`` (one line per tensor: the largest published are ~10 MiB)
MAX_INDEX_BYTES = 32 * 1024 * 1024
#: one safetensors JSON header (the format allows 100 MB; real ones are well under 1 MiB)
MAX_HEADER = 16 * 1024 * 1024
#: safetensors files read for one model
MAX_SHARDS = 4096
#: the largest value a count or size in a config may take (2³¹ − 1): past it, a config is damaged
MAX_DIMENSION = 2**31 - 1
#: ``config.json`` keys that must be positive whole numbers when present
_DIMENSIONS = (
    "num_hidden_layers",
    "n_layer",
    "num_layers",
    "hidden_size",
    "n_embd",
    "d_model",
    "num_attention_heads",
    "n_head",
    "num_heads",
    "num_key_value_heads",
    "num_kv_heads",
    "n_head_kv",
    "head_dim",
    "max_position_embeddings",
    "n_positions",
    "max_sequence_length",
    "vocab_size",
    "intermediate_size",
    "ffn_dim",
    "num_local_experts",
    "num_experts",
    "n_routed_experts",
)
#: where a multimodal config keeps its language model's facts
_NESTED = ("text_config", "llm_config", "language_config")
_FIX = "repair the model's files, or give another folder"


def _refuse(field: str, message: str) -> InvalidInput:
    return InvalidInput(Problem(field, message, _FIX))


def check_dimensions(config: Mapping[str, Any], where: str, field: str = "path") -> None:
    """Every count or size a config names is a whole number from 1 to :data:`MAX_DIMENSION`."""
    problems = []
    scopes = [("", config), *((f"{k}.", config[k]) for k in _NESTED if isinstance(config.get(k), Mapping))]
    for scope, values in scopes:
        for key in _DIMENSIONS:
            value = values.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIMENSION:
                wanted = f"not a whole number from 1 to {MAX_DIMENSION}"
                problems.append(Problem(field, f"{where}: {scope}{key} is {value!r:.40}, {wanted}", _FIX))
    if problems:
        raise InvalidInput(problems)


def read_config(folder: Path, field: str = "path") -> Architecture:
    """The facts of a folder's ``config.json``, checked (an object, counts that are counts)."""
    path = folder / "config.json"
    config = load_json_file(path, field, MAX_CONFIG_BYTES, "config.json")
    if not isinstance(config, dict):
        raise _refuse(field, f"config.json is a JSON {type(config).__name__}, not an object")
    check_dimensions(config, "config.json", field)
    try:
        return from_hf_config(config, str(path))
    except ValidationError as exc:
        raise InvalidInput(
            [Problem(field, f"config.json: {'.'.join(map(str, e['loc']))}: {e['msg']}", _FIX) for e in exc.errors()]
        ) from None
    except (TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
        raise _refuse(field, f"config.json cannot be read as a model's config: {exc}") from None


def _check_header(header: Any, name: str, data_bytes: int, field: str) -> dict:
    """A safetensors header as the format defines it: tensor name → dtype, shape, data offsets
    inside the file's data (``__metadata__`` aside)."""
    if not isinstance(header, dict):
        raise _refuse(field, f"{name}: the header is a JSON {type(header).__name__}, not an object")
    for tensor, info in header.items():
        if tensor == "__metadata__":
            continue
        shape, offsets = (info.get("shape"), info.get("data_offsets")) if isinstance(info, dict) else (None, None)
        ints = isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2
        ints = ints and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (*shape, *offsets))
        ints = ints and all(v <= MAX_DIMENSION for v in shape)
        if not ints or not isinstance(info.get("dtype"), str) or len(shape) > 8:
            raise _refuse(field, f"{name}: tensor {tensor!r:.60} is not a dtype, shape and data_offsets")
        if not offsets[0] <= offsets[1] <= data_bytes:
            raise _refuse(field, f"{name}: tensor {tensor!r:.60} lies past the file's end ({data_bytes} bytes of data)")
    return header


def read_safetensors_header(path: Path, field: str = "path") -> dict:
    with open_regular(path, field, _FIX) as f:
        size = f.seek(0, 2)
        f.seek(0)
        head = f.read(8)
        if len(head) < 8:
            raise _refuse(field, f"{path.name} is {len(head)} bytes: not a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            raise _refuse(
                field,
                f"{path.name}: a safetensors header of {length} bytes in a file of {size} "
                f"(the limit is {size_text(MAX_HEADER)}): not a safetensors file, or a damaged one",
            )
        data = f.read(length)
    try:
        header = parse_json(data)
    except ValueError as exc:  # JSON syntax, or hostile content (UntrustedJson)
        raise _refuse(field, f"{path.name}: the safetensors header is not usable JSON: {exc}") from None
    return _check_header(header, path.name, size - 8 - length, field)


def _shards(folder: Path, field: str) -> list[Path]:
    """The safetensors files of a folder: those its index names, else every ``*.safetensors``."""
    index = folder / "model.safetensors.index.json"
    if index.exists() or index.is_symlink():  # a broken link or a loop is refused, not skipped
        data = load_json_file(index, field, MAX_INDEX_BYTES, index.name)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise _refuse(field, f"{index.name}: weight_map is not an object of file names")
        names = sorted(set(weight_map.values()))
        outside = [n for n in names if Path(n).name != n or n in ("", ".", "..")]
        if outside:  # the index names files of this folder, never paths elsewhere
            raise _refuse(field, f"{index.name}: weight_map names {outside[0]!r:.80}, not a file of this folder")
        files = [folder / n for n in names]
    else:
        files = sorted(folder.glob("*.safetensors"))
    if len(files) > MAX_SHARDS:
        raise _refuse(field, f"{len(files)} safetensors files; at most {MAX_SHARDS} are read")
    return files


def read_hf_architecture(folder: Path, field: str = "path") -> Architecture:
    """``config.json`` facts, with parameters and weight bytes from the safetensors headers when
    the folder has them (the shards an index names, else every ``*.safetensors``)."""
    folder = directory(folder, field, "give a Hugging Face model folder")
    arch = read_config(folder, field)
    files = _shards(folder, field)
    if not files:
        return arch
    params, size = safetensors_totals(read_safetensors_header(f, field) for f in files)
    return arch.model_copy(
        update={
            "parameters_b": params / 1e9,
            "weight_bytes": size,
            "source": f"{arch.source} + safetensors headers ({len(files)} file(s))",
        }
    )
