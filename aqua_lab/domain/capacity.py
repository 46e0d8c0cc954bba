"""Capacity: the what-if inputs of the memory model and how a model fits a GPU's memory."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..precisions import known_precisions, precision_bytes

KvCacheDtype = Literal["auto", "fp8"]


class CapacityInputs(BaseModel):
    """What-if inputs of a plan.  ``None`` means: what the model's config says, else vLLM's default."""

    model_config = ConfigDict(extra="forbid")

    max_model_len: int | None = Field(default=None, ge=16, description="context each sequence must hold")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="sequences of max_model_len that must fit at once (vLLM: 1; llama.cpp: its slots)",
    )
    kv_cache_dtype: KvCacheDtype | None = Field(default=None, description="auto (the weights' dtype) or fp8")
    weight_precision: str | None = Field(
        default=None, description="auto, bf16, fp16, fp8, int8, int4, mxfp4 or a GGUF type (Q4_K_M, Q8_0, …)"
    )
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1, description="vLLM's default is 0.9")
    ocpus: int | None = Field(default=None, ge=1, description="OCI CPU flex shapes: plan them at this many OCPUs")
    memory_in_gbs: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="OCI CPU flex shapes: and this much memory"
    )

    @staticmethod
    def precisions() -> list[str]:
        """The weight precisions the memory model knows (for the fronts' choices)."""
        return known_precisions()

    @field_validator("weight_precision")
    @classmethod
    def _known_precision(cls, value: str | None) -> str | None:
        if value is None or value == "auto" or precision_bytes(value) is not None:
            return value
        raise ValueError(f"unknown precision {value!r}: use one of {', '.join(known_precisions())}")


class MemoryFit(BaseModel):
    """One model at one tensor-parallel size: what each of its GPUs holds (GB are 10^9 bytes)."""

    tensor_parallel_size: int
    weights_gb: float = Field(description="weights per GPU")
    kv_bytes_per_token: int = Field(description="KV cache bytes per token per GPU")
    kv_cache_gb: float = Field(description="KV cache per GPU for concurrency × max_model_len tokens")
    overhead_gb: float = Field(description="runtime overhead per GPU (activations, CUDA graphs, context)")
    per_gpu_gb: float = Field(description="weights + KV cache + overhead on each GPU")
    gpu_memory_gb: float = Field(description="memory the engine may use per GPU (memory × utilisation)")
    gpu_memory_utilization: float
    max_model_len: int = Field(description="the context checked")
    concurrency: int
    kv_cache_dtype: str
    weight_precision: str
    kv_capacity_tokens: int = Field(description="tokens the KV cache holds on this share")
    max_model_len_fit: int = Field(description="the largest context for which `concurrency` sequences fit")
    fits: bool
    reasons: list[str] = Field(default_factory=list)
