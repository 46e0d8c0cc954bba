"""Architecture facts from the places they are published: a Hugging Face ``config.json``, the
tensor list of safetensors headers, a GGUF header's metadata, and the bundled table of service
models.  Pure: handed parsed dicts, it returns :class:`~aqua_lab.domain.Architecture`; reading the
files is the caller's (``aqua_lab.catalog.model_files``).

Weight precision names map to bytes per weight here, once, for vLLM's and llama.cpp's formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..domain import Architecture
from ..precisions import GGUF_BITS, PRECISION_BYTES, known_precisions, precision_bytes  # noqa: F401 (re-exported)

# general.file_type of a GGUF header (llama.cpp's llama_ftype)
GGUF_FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    23: "IQ3_XXS",
    25: "IQ4_NL",
    30: "IQ4_XS",
    32: "BF16",
}

KV_DTYPE_BYTES = {"auto": 2.0, "fp8": 1.0}
LLAMA_CPP_KV_BYTES = {"auto": 2.0, "fp8": 34 / 32}  # f16, or q8_0 (the 8-bit cache llama.cpp has)


def weight_bytes(arch: Architecture, precision: str | None) -> tuple[float | None, str]:
    """The weights' bytes at ``precision`` (``None``/``auto``: as the checkpoint is), and the
    precision name that applies."""
    native = (arch.dtype or "bf16").lower()
    if precision in (None, "auto") or precision.lower() == native:
        if arch.weight_bytes:
            return float(arch.weight_bytes), arch.dtype or "auto"
        per = precision_bytes(native)
        if arch.parameters_b is None or per is None:
            return None, native
        return arch.parameters_b * 1e9 * per, native
    per = precision_bytes(precision)
    if per is None or arch.parameters_b is None:
        return None, precision
    return arch.parameters_b * 1e9 * per, precision


def kv_bytes_per_token(arch: Architecture, tp: int = 1, kv_dtype: str = "auto", engine: str = "vllm") -> int:
    """KV cache bytes one token takes on each of ``tp`` GPUs: K and V for every attention layer;
    KV heads split over the GPUs, each GPU keeping at least one (vLLM replicates them when ``tp``
    exceeds their number)."""
    if not arch.kv_cache or not arch.layers or not arch.kv_heads or not arch.head_dim:
        return 0
    table = LLAMA_CPP_KV_BYTES if engine == "llama.cpp" else KV_DTYPE_BYTES
    heads = max(1, arch.kv_heads // tp) if tp <= arch.kv_heads else 1
    layers = arch.attention_layers or arch.layers
    return math.ceil(2 * layers * heads * arch.head_dim * table[kv_dtype])


def tensor_parallel_problem(arch: Architecture | None, tp: int) -> str | None:
    """vLLM's rule: attention heads divisible by ``tp``, and KV heads divisible by ``tp`` or ``tp``
    divisible by KV heads.  None when valid or when the heads are unknown."""
    if arch is None or tp <= 1 or not arch.attention_heads:
        return None
    heads, kv = arch.attention_heads, arch.kv_heads or arch.attention_heads
    if heads % tp:
        return f"{heads} attention heads are not divisible by tensor-parallel size {tp}"
    if kv % tp and tp % kv:
        return f"{kv} KV heads: tensor-parallel size {tp} neither divides them nor is a multiple of them"
    return None


# --------------------------------------------------------------------------------------------------
# Hugging Face config.json

_ENCODER_TYPES = {"bert", "roberta", "xlm-roberta", "deberta", "deberta-v2", "distilbert", "electra", "mpnet"}


def _first(config: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return None


def from_hf_config(config: Mapping[str, Any], source: str) -> Architecture:
    """Facts from a ``config.json``; a multimodal model's language model is its ``text_config``
    (or ``llm_config``)."""
    text = config
    for key in ("text_config", "llm_config", "language_config"):
        if isinstance(config.get(key), Mapping) and config[key].get("num_hidden_layers"):
            text = {**config, **config[key]}
            break
    layers = _first(text, "num_hidden_layers", "n_layer", "num_layers")
    hidden = _first(text, "hidden_size", "n_embd", "d_model")
    heads = _first(text, "num_attention_heads", "n_head", "num_heads")
    kv = _first(text, "num_key_value_heads", "num_kv_heads", "n_head_kv")
    if kv is None and text.get("multi_query"):
        kv = 1
    kv = kv if kv is not None else heads
    head_dim = _first(text, "head_dim")
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    layer_types = text.get("layer_types") or []
    attention_layers = sum(1 for t in layer_types if "attention" in str(t)) if layer_types else None
    if attention_layers == layers:
        attention_layers = None
    dtype = _first(text, "torch_dtype", "dtype")
    quant = config.get("quantization_config") or {}
    if isinstance(quant, Mapping) and quant.get("quant_method"):
        method = str(quant["quant_method"]).lower()
        dtype = {"bitsandbytes": "int4" if quant.get("load_in_4bit") else "int8"}.get(method, method)
    model_type = str(text.get("model_type", "")).lower()
    archs = config.get("architectures") or []
    return Architecture(
        layers=layers,
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        max_position_embeddings=_first(text, "max_position_embeddings", "n_positions", "max_sequence_length"),
        dtype=dtype,
        vocab_size=_first(text, "vocab_size"),
        intermediate_size=_first(text, "intermediate_size", "ffn_dim"),
        tie_word_embeddings=config.get("tie_word_embeddings"),
        attention_layers=attention_layers,
        kv_cache=model_type not in _ENCODER_TYPES,
        experts=_first(text, "num_local_experts", "num_experts", "n_routed_experts"),
        architecture=archs[0] if archs else (model_type or None),
        source=source,
    )


SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1}


def safetensors_totals(headers: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(parameters, bytes) of the tensors listed in safetensors headers — exact, nothing loaded.
    Packed types (FP8, U8-packed 4-bit) count their stored elements as parameters."""
    params = size = 0
    for header in headers:
        for name, info in header.items():
            if name == "__metadata__" or not isinstance(info, Mapping):
                continue
            params += math.prod(info.get("shape") or [1])
            start, end = info.get("data_offsets", (0, 0))
            size += end - start
    return params, size


# --------------------------------------------------------------------------------------------------
# GGUF


def from_gguf_metadata(meta: Mapping[str, Any], source: str) -> Architecture:
    """Facts from a GGUF header's key/values (``meta``), plus ``parameters``/``tensor_bytes`` the
    reader adds from the tensor infos."""
    arch = str(meta.get("general.architecture", ""))

    def key(name: str) -> Any:
        return meta.get(f"{arch}.{name}")

    heads = key("attention.head_count")
    kv = key("attention.head_count_kv")
    if isinstance(kv, list):  # per-layer counts (hybrid models): the largest is what a layer needs
        kv = max(kv) if kv else None
    hidden = key("embedding_length")
    head_dim = key("attention.key_length") or (hidden // heads if hidden and heads else None)
    file_type = meta.get("general.file_type")
    vocab = key("vocab_size") or meta.get("tokenizer.ggml.tokens.count")
    params = meta.get("parameters")
    return Architecture(
        parameters_b=params / 1e9 if params else None,
        layers=key("block_count"),
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv if kv is not None else heads,
        head_dim=head_dim,
        max_position_embeddings=key("context_length"),
        dtype=GGUF_FILE_TYPES.get(file_type, f"gguf type {file_type}") if file_type is not None else None,
        vocab_size=vocab,
        intermediate_size=key("feed_forward_length"),
        weight_bytes=meta.get("tensor_bytes"),
        experts=key("expert_count"),
        architecture=arch or None,
        source=source,
    )


# --------------------------------------------------------------------------------------------------
# The bundled table


def from_table_row(row: Mapping[str, Any]) -> Architecture:
    fields = {k: v for k, v in row.items() if k in Architecture.model_fields}
    if row.get("weight_gb"):
        fields["weight_bytes"] = int(row["weight_gb"] * 1e9)
    return Architecture(**fields)


__all__ = [
    "PRECISION_BYTES",
    "GGUF_BITS",
    "precision_bytes",
    "known_precisions",
    "weight_bytes",
    "kv_bytes_per_token",
    "tensor_parallel_problem",
    "from_hf_config",
    "from_gguf_metadata",
    "from_table_row",
    "safetensors_totals",
]
