"""This machine as a shape: its GPUs when it has some, otherwise its CPU cores.

On a CPU machine the "GPU" slots of the shape are cores: the planner splits them between models
exactly as it splits GPUs on OCI, and each llama.cpp server gets that many threads.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass

from ...domain import GpuSpec, Shape
from ...planning.capacity import LLAMA_CPP_CUDA, VLLM_MEASURED
from . import engine_build
from .engines import CPU, CUDA, LLAMA_CPP, VLLM

CPU_GPU_TYPE = "CPU"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_gb: float


def detect_gpus(nvidia_smi: str | None = None) -> list[Gpu]:
    """NVIDIA GPUs seen by ``nvidia-smi`` (none when it is missing or fails)."""
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> list[Gpu]:
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit():
            # MiB → GB (10^9 bytes), the planner's unit: an H100's 81559 MiB is 85.5 GB, not "79.6"
            gpus.append(Gpu(int(parts[0]), parts[1], round(float(parts[2]) * 2**20 / 1e9, 1)))
    return gpus


def core_ids() -> list[int]:
    """The CPU cores this process may run on (its affinity), in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def usable_cores() -> int:
    return len(core_ids())


def memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        return None


def local_shape(gpus: list[Gpu] | None = None, cores: int | None = None, ram_gb: float | None = None) -> Shape:
    gpus = detect_gpus() if gpus is None else gpus
    cores = cores or usable_cores()
    ram_gb = memory_gb() if ram_gb is None else ram_gb
    if gpus:
        kind = gpus[0].name.replace("NVIDIA ", "").split()[0]
        return Shape(
            name=f"LOCAL.GPU.{kind}.{len(gpus)}",
            core_count=cores,
            memory_in_gbs=ram_gb,
            shape_series="NVIDIA_GPU",
            gpu_specs=GpuSpec(gpu_count=len(gpus), gpu_memory_in_gbs=sum(g.memory_gb for g in gpus), gpu_type=kind),
        )
    return Shape(
        name=f"LOCAL.CPU.{cores}",
        core_count=cores,
        memory_in_gbs=ram_gb,
        shape_series="CPU",
        # each "GPU" slot is one core; its memory share is RAM / cores
        gpu_specs=GpuSpec(gpu_count=cores, gpu_memory_in_gbs=ram_gb, gpu_type=CPU_GPU_TYPE),
    )


def is_cpu_shape(shape: Shape) -> bool:
    return bool(shape.gpu_specs and shape.gpu_specs.gpu_type == CPU_GPU_TYPE)


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_engine(shape: Shape) -> tuple[str, str]:
    """(engine, device) for this machine: llama.cpp on a CPU shape; on GPUs vLLM where it is
    installed, else llama.cpp built for CUDA where nvcc can build it; else vLLM, whose absence the
    first create reports (as before the CUDA build existed)."""
    if is_cpu_shape(shape):
        return LLAMA_CPP, CPU
    if not vllm_installed() and engine_build.is_cuda_build():
        return LLAMA_CPP, CUDA
    return VLLM, CPU


def shared_gpu_engine(shape: Shape, engine: str, params_key: str) -> tuple[str, str] | None:
    """On GPUs, several models may share one here (planning/gpu_sharing): the memory model's engine that
    sizes their budgets and the parameters entry the budget flags go to; on a CPU shape, None."""
    if is_cpu_shape(shape):
        return None
    return (LLAMA_CPP_CUDA if engine == LLAMA_CPP else VLLM_MEASURED), params_key
