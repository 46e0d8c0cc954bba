"""Memory estimates for models that have no ``multi_model_deployment`` entries.

A model served by vLLM in 16-bit weights needs about 2 bytes per parameter, plus room for the KV
cache and activations.  vLLM claims 90 % of each GPU by default (``--gpu-memory-utilization``), so a
share of ``g`` GPUs is usable up to ``0.9 × g × per-GPU memory``.  The numbers are deliberately
simple and the result is always flagged ``estimated``: it is a starting point, not a promise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..domain import Shape
from .allocate import is_power_of_two

BYTES_PER_PARAMETER = 2.0
KV_CACHE_HEADROOM = 0.25  # fraction of the weights kept free for KV cache at a modest context
RUNTIME_OVERHEAD_GB = 2.0  # CUDA context, CUDA graphs, the server process
GPU_MEMORY_UTILIZATION = 0.9

_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z0-9])")


def parameter_count_from_name(name: str) -> float | None:
    """Billions of parameters read from a model name: ``Meta-Llama-3.1-70B`` → 70,
    ``granite-embedding-278m`` → 0.278; None when the name does not say."""
    sizes = [
        float(number) / (1000 if unit in "mM" else 1)
        for number, unit in _SIZE.findall(name.replace("_", "-").split("/")[-1].replace("-", " "))
    ]
    return max(sizes) if sizes else None


def estimated_need_gb(parameter_count_b: float) -> float:
    weights = parameter_count_b * BYTES_PER_PARAMETER
    return round(weights * (1 + KV_CACHE_HEADROOM) + RUNTIME_OVERHEAD_GB, 1)


@dataclass(frozen=True)
class Estimate:
    counts: list[int]
    need_gb: float | None
    reason: str | None = None


def estimate_counts(parameter_count_b: float | None, shape: Shape) -> Estimate:
    """Power-of-two GPU counts on ``shape`` whose memory holds the model; every power of two up to
    the shape when the size is unknown."""
    powers = [g for g in range(1, shape.gpu_count + 1) if is_power_of_two(g)]
    per_gpu = shape.per_gpu_memory_in_gbs
    if parameter_count_b is None or per_gpu is None:
        return Estimate(powers, None)
    need = estimated_need_gb(parameter_count_b)
    fitting = [g for g in powers if g * per_gpu * GPU_MEMORY_UTILIZATION >= need]
    if fitting:
        return Estimate(fitting, need)
    usable = round(shape.gpu_count * per_gpu * GPU_MEMORY_UTILIZATION, 1)
    return Estimate(
        [],
        need,
        f"needs about {need} GB (≈{parameter_count_b:g}B parameters) but all {shape.gpu_count} GPUs "
        f"give {usable} GB usable",
    )
