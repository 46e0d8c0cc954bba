"""Shapes: what a machine offers (GPUs, cores, memory) and how its slots are worded."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, computed_field, model_validator


class GpuSpec(BaseModel):
    """GPUs of a shape.  ``gpu_memory_in_gbs`` is the *total* for the shape, as in OCI's GPU index
    and the seed's ``list_shapes`` output; the per-GPU figure is derived."""

    gpu_count: int = Field(ge=0)
    gpu_memory_in_gbs: float | None = Field(default=None, ge=0)
    gpu_type: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def per_gpu_memory_in_gbs(self) -> float | None:
        if not self.gpu_count or self.gpu_memory_in_gbs is None:
            return None
        return round(self.gpu_memory_in_gbs / self.gpu_count, 2)


class Shape(BaseModel):
    """A compute shape a deployment can run on (an OCI shape, or this machine for ``local``)."""

    name: str
    core_count: int | None = None
    memory_in_gbs: float | None = None
    shape_series: str | None = None
    gpu_specs: GpuSpec | None = None
    quantization: list[str] = Field(default_factory=list)
    ranking: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list, description="what is not known about the shape, and why")
    available: bool = Field(
        default=True,
        description="ADS's `available`: true when the platform offers the shape where it deploys (OCI: "
        "ListModelDeploymentShapes answered it for this compartment and region; local: this machine); false when "
        "nobody was asked (bundled: the list shipped with aqua_lab, not checked against any region)",
    )
    # derived from gpu_specs, sent so that every front names a slot and its memory as the platform does
    slot_unit: Literal["GPU", "core"] = Field(
        default="GPU", description="what one slot of the shape is: 'core' on a CPU machine, else 'GPU'"
    )
    memory_unit: Literal["GPU memory", "RAM"] = Field(
        default="GPU memory", description="what the memory a slot gives is called: 'RAM' on a CPU machine"
    )

    @model_validator(mode="after")
    def _units(self) -> Shape:
        self.slot_unit = "core" if self.is_cpu else "GPU"
        self.memory_unit = "RAM" if self.is_cpu else "GPU memory"
        return self

    @property
    def gpu_count(self) -> int:
        return self.gpu_specs.gpu_count if self.gpu_specs else 0

    @property
    def per_gpu_memory_in_gbs(self) -> float | None:
        return self.gpu_specs.per_gpu_memory_in_gbs if self.gpu_specs else None

    @property
    def is_cpu(self) -> bool:
        """A CPU machine as a shape (the local platform): its "GPUs" are cores, its GPU memory RAM."""
        return bool(self.gpu_specs and self.gpu_specs.gpu_type == "CPU")

    def unit(self, count: int = 2) -> str:
        """What one slot of this shape is, in the machine's words: a core on CPU, a GPU otherwise."""
        word = "core" if self.is_cpu else "GPU"
        return word if count == 1 else word + "s"

    @property
    def memory_word(self) -> str:
        return "RAM" if self.is_cpu else "GPU memory"


_GPU_WORDS = [
    (re.compile(r"\bGPU memory\b"), "RAM"),
    (re.compile(r"\bGPU\(s\)"), "core(s)"),
    (re.compile(r"\bGPUs\b"), "cores"),
    (re.compile(r"\bGB/GPU\b"), "GB/core"),
    (re.compile(r"(?<![-.\w])GPU(?![-_.\w]| shape)"), "core"),
    (re.compile(r"-GPU\b"), "-core"),
]


def machine_words(text: str, shape: Shape | None) -> str:
    """``text`` in the words of ``shape``: on a CPU machine its "GPUs" are cores and their memory is
    RAM (the planner speaks of GPUs everywhere; a user of LOCAL.CPU.2 should read "cores")."""
    if shape is None or not shape.is_cpu or not text:
        return text
    for pattern, word in _GPU_WORDS:
        text = pattern.sub(word, text)
    return text
