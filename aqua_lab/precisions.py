"""Bytes per weight of the precisions the memory model knows: plain data below the domain, which
checks a requested precision against it (planning's architecture facts read it too)."""

from __future__ import annotations

# Bytes per weight of the precisions vLLM loads.  ``auto`` keeps a 16-bit checkpoint as it is and
# serves a float32 one in 16 bits (vLLM's ``--dtype auto``); mxfp4 is 4-bit values plus one 8-bit
# scale per 32 (4.25 bits).
PRECISION_BYTES = {
    "bf16": 2.0,
    "bfloat16": 2.0,
    "fp16": 2.0,
    "float16": 2.0,
    "half": 2.0,
    "float32": 2.0,
    "fp32": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "awq": 0.5,
    "gptq": 0.5,
    "mxfp4": 4.25 / 8,
}

# GGUF quantisation types: bits per weight.  Block types are exact (block bytes × 8 / block size);
# the _S/_M/_L mixtures are the file sizes llama.cpp's quantize table gives for a 7B Llama.
GGUF_BITS = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_1": 6.0,
    "Q5_0": 5.5,
    "Q5_K_M": 5.67,
    "Q5_K_S": 5.52,
    "Q4_1": 5.0,
    "Q4_0": 4.5,
    "Q4_K_M": 4.83,
    "Q4_K_S": 4.58,
    "IQ4_NL": 4.5,
    "IQ4_XS": 4.25,
    "Q3_K_L": 4.22,
    "Q3_K_M": 3.89,
    "Q3_K_S": 3.5,
    "Q2_K": 3.17,
    "IQ3_XXS": 3.06,
    "IQ2_XXS": 2.06,
}


def precision_bytes(precision: str) -> float | None:
    """Bytes per weight for a precision name (case-insensitive; GGUF types too); None if unknown."""
    key = precision.strip()
    if key.upper() in GGUF_BITS:
        return GGUF_BITS[key.upper()] / 8
    return PRECISION_BYTES.get(key.lower())


def known_precisions() -> list[str]:
    return ["auto", "bf16", "fp16", "fp8", "int8", "int4", "mxfp4", *GGUF_BITS]
