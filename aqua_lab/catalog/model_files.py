"""Architecture facts read from a model's files on disk: a Hugging Face folder's ``config.json``
and the headers of its safetensors files (exact weight bytes; no tensor is loaded).  GGUF headers
are read by the local platform (``platforms/local/models.py``), which owns that format."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ..domain import Architecture
from ..planning.architectures import from_hf_config, safetensors_totals

MAX_HEADER = 100 * 1024 * 1024  # the safetensors format caps its JSON header at 100 MB


def read_safetensors_header(path: Path) -> dict:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > MAX_HEADER:
            raise ValueError(f"{path.name}: safetensors header of {length} bytes is not plausible")
        return json.loads(f.read(length))


def read_hf_architecture(folder: Path) -> Architecture:
    """``config.json`` facts, with parameters and weight bytes from the safetensors headers when
    the folder has them (the shards an index names, else every ``*.safetensors``)."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    arch = from_hf_config(config, f"{folder / 'config.json'}")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
        files = [folder / s for s in shards]
    else:
        files = sorted(folder.glob("*.safetensors"))
    if not files:
        return arch
    params, size = safetensors_totals(read_safetensors_header(f) for f in files)
    return arch.model_copy(
        update={
            "parameters_b": params / 1e9,
            "weight_bytes": size,
            "source": f"{arch.source} + safetensors headers ({len(files)} file(s))",
        }
    )
