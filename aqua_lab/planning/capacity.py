"""The memory model: what one model needs on each of its GPUs at a tensor-parallel size.

Per GPU, for model *m* at tensor-parallel size *tp*::

    weights ÷ tp  +  KV bytes per token per GPU × max_model_len × concurrency  +  overhead
        ≤  GPU memory × gpu_memory_utilization

KV bytes per token per GPU = 2 (K and V) × attention layers × max(1, KV heads ÷ tp) × head dim ×
bytes of the KV dtype — vLLM replicates KV heads when *tp* exceeds them.  vLLM refuses to start
when one sequence of ``max_model_len`` does not fit in what remains for the KV cache ("max seq len
is larger than the maximum number of tokens that can be stored in KV cache"); ``concurrency``
asks for that many such sequences at once.

Overhead is a documented figure per engine, not a fudge:

* vLLM: 2.0 GB per GPU — its startup accounting (``Memory profiling takes …``) for 1–70B models
  reports a PyTorch activation peak of ~1–1.5 GiB at the default batch budget, ~0.2–0.5 GiB
  non-torch memory (CUDA context, NCCL) and CUDA graphs of ~0.3–0.6 GiB;
* llama.cpp on CPU (:func:`llama_cpp_cpu_overhead_bytes`): what llama-server logs at load besides
  weights and KV cache, and what the process itself holds, measured on this machine (the build
  ``engine_build`` compiles, AVX-512, ``--log-verbosity 4``; SmolLM2-135M Q4_1 and a 0.33B F16
  llama of hidden 1024 / feed-forward 2816, at micro-batches of 128–512, 1–8 slots, 512–16 384
  tokens).  ``sched_reserve: CPU compute buffer size`` is n_ubatch × (12 × n_ff + 16 × n_embd
  + 2 × n_ctx_seq) bytes within 0.1 % (15.51 / 7.76 / 3.88 MiB for SmolLM2 at ubatch 512 / 256 /
  128; 14.01 at a 512-token slot; 26.51 for the wider model): three f32 feed-forward activations
  and four of the hidden size per token, and the f16 attention mask of flash attention, which CPU
  builds turn on (``flash_attn = auto``).  ``CPU output buffer size`` is slots × n_vocab × 4 (the
  logits of one token per slot; 0.75 MiB at 4 slots).  The runtime (``LLAMA_CPP_RUNTIME_MIB``):
  the RSS of a server whose model is unloaded (asleep) — binary and libraries ~11 MiB, the HTTP
  server, chat template and slots on the heap — 28.8–31.9 MiB; the tokenizer adds about
  ``LLAMA_CPP_VOCAB_BYTES`` per vocabulary entry on the heap (19.5 MiB resident vs 12–15 asleep
  for SmolLM2's 49 152 tokens and 48 900 merges).  The whole compute buffer is counted though a
  short prompt touches little of it: a 512-token prompt touches all of it.

Measured vLLM (``VLLM_MEASURED``, :func:`vllm_measured_overhead_gb`): what vLLM V1 itself reports at
start-up on an H100 at its default batch budget, from llm-d-benchmark's
``config_explorer/empirical-vllm-memory-results.md`` (FlashAttention, ``--gpu-memory-utilization``
0.9, 16 000 tokens): a PyTorch activation peak of 4.76 GiB for dense models (Llama-3.1-8B; 4.84 for
Llama-3.3-70B-FP8 on 2 GPUs) and 7.38 GiB for mixture-of-experts models (gpt-oss-20b and -120b alike),
non-torch memory of 0.13 GiB on one GPU and 0.55 GiB per GPU on two (NCCL).  CUDA graphs (0.39 GiB
for gpt-oss-20b) are captured after the KV cache is sized, so they are not taken from it.  The flat
2.0 GB stays the default for plans (OCI and the documented figures); the measured terms are what the
local GPU planner and the check against the table use, and what ``bench/gpu_check.sh`` measures.

llama.cpp on CUDA (``LLAMA_CPP_CUDA``): the CUDA context and cuBLAS workspace of one process
(``LLAMA_CPP_CUDA_CONTEXT_GB``, an estimate to be replaced by ``bench/gpu_check.sh``'s measurement)
plus the compute buffer: the larger of the f32 logits of one micro-batch (``--ubatch-size`` ×
vocabulary × 4 bytes; this llama.cpp reserves logits for one token per slot only, so this is a bound)
and the graph's activations as measured on CPU (:func:`llama_cpp_graph_bytes`), which exceed it for
small vocabularies and wide feed-forwards (Mixtral: 130 MB vs 66 MB).

GB are 10^9 bytes throughout, and the shape index's per-GPU figures are read as such: exact for
A10 and L40S (24/48 GB), about 7 % conservative for A100/H100/H200, whose 40/80/141 "GB" are GiB.

Where a model's facts are missing the result says so; nothing is guessed silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..domain import Architecture, CapacityInputs, MemoryFit
from .architectures import kv_bytes_per_token, precision_bytes, weight_bytes
from .params import parse_params

VLLM = "vllm"
VLLM_MEASURED = "vllm-measured"  # the same engine, with the overheads it reports (module docstring)
LLAMA_CPP = "llama.cpp"
LLAMA_CPP_CUDA = "llama.cpp-cuda"
OVERHEAD_GB = {VLLM: 2.0, LLAMA_CPP: 0.25}  # llama.cpp: a model with no known shape (its file is counted)
GIB = 2**30 / 1e9
# llm-d-benchmark config_explorer/empirical-vllm-memory-results.md (H100, vLLM V1, default batch budget)
VLLM_ACTIVATION_GIB = {"dense": 4.76, "moe": 7.38}
VLLM_NON_TORCH_GIB = {1: 0.13, 2: 0.55}
LLAMA_CPP_CUDA_CONTEXT_GB = 0.5
LLAMA_CPP_UBATCH = 512  # llama-server's default --ubatch-size; the budget flags pin it
LLAMA_CPP_RUNTIME_MIB = 30.0  # llama-server with no model loaded (module docstring)
LLAMA_CPP_VOCAB_BYTES = 128  # its tokenizer's heap per vocabulary entry
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9  # vLLM's --gpu-memory-utilization default
UNKNOWN_CONTEXT = 4096  # checked when neither the user, the config nor the model says
FALLBACK_CONTEXT = 4096  # estimated counts when the native context fits nowhere and none was asked
CONTEXT_STEP = 256  # suggested contexts are rounded down to this (llama.cpp pads its cache to it)
LLAMA_CPP_DEFAULT_SLOTS = 4  # the local platform's llama-server default (--max-num-seqs → --parallel)


@dataclass(frozen=True)
class ConfigFlags:
    """The capacity-related flags of a config's parameters (vLLM's or llama.cpp's)."""

    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_dtype: str | None = None
    weight_precision: str | None = None
    max_num_seqs: int | None = None
    ubatch_size: int | None = None  # llama.cpp's --ubatch-size: its compute buffer scales with it


_CONTEXT_KEYS = {"max-model-len", "n-ctx", "ctx-size", "c"}


@lru_cache(maxsize=1024)  # configs repeat the same few strings; shlex is the cost of a re-plan
def config_flags(params: str | None) -> ConfigFlags:
    """Read ``--max-model-len``, ``--gpu-memory-utilization``, ``--kv-cache-dtype``,
    ``--quantization``/``--dtype`` and ``--max-num-seqs`` (or llama.cpp's ``--n_ctx``) from params;
    values that do not parse are left out (validation reports them elsewhere)."""
    if not params:
        return ConfigFlags()
    try:
        flags = parse_params(params)
    except Exception:  # noqa: BLE001 - an unparsable config string is reported by validation
        return ConfigFlags()
    found: dict[str, str | None] = {}
    for flag in flags:  # a repeated flag or several values: the last one is what the engine keeps
        found[flag.key] = flag.values[-1] if flag.values else None
    return ConfigFlags(
        max_model_len=_int(next((found[k] for k in _CONTEXT_KEYS if k in found), None)),
        gpu_memory_utilization=_float(found.get("gpu-memory-utilization")),
        kv_cache_dtype=_kv_dtype(found),
        weight_precision=_precision(found),
        max_num_seqs=_int(found.get("max-num-seqs")),
        ubatch_size=_int(next((found[k] for k in ("ubatch-size", "ub", "n-ubatch") if k in found), None)),
    )


def _kv_dtype(found: dict[str, str | None]) -> str | None:
    """vLLM's ``--kv-cache-dtype fp8*``, or llama.cpp's 8-bit ``--cache-type-k q8_0``."""
    if str(found.get("kv-cache-dtype") or "").startswith("fp8"):
        return "fp8"
    if str(found.get("cache-type-k") or found.get("ctk") or "").startswith("q8"):
        return "fp8"
    return None


def _precision(found: dict[str, str | None]) -> str | None:
    quant = (found.get("quantization") or "").lower()
    if quant and precision_bytes(quant) is not None:
        return quant
    dtype = (found.get("dtype") or "").lower()
    return dtype if dtype and dtype != "auto" and precision_bytes(dtype) is not None else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def memory_fit(
    arch: Architecture,
    tp: int,
    gpu_memory_gb: float,
    inputs: CapacityInputs | None = None,
    flags: ConfigFlags | None = None,
    engine: str = VLLM,
    max_model_len: int | None = None,
) -> MemoryFit | None:
    """Per-GPU memory of ``arch`` on ``tp`` GPUs of ``gpu_memory_gb`` each; None when the weights'
    size is unknown (``arch.missing()`` says what is).  The asked inputs win over the config's
    flags, which win over the engine's defaults; ``max_model_len`` overrides both (suggestions)."""
    inputs = inputs or CapacityInputs()
    flags = flags or ConfigFlags()
    precision = inputs.weight_precision or flags.weight_precision
    total_weights, precision_name = weight_bytes(arch, precision)
    if total_weights is None or (arch.kv_cache and kv_bytes_per_token(arch, 1) == 0):
        return None
    utilization = inputs.gpu_memory_utilization or flags.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION
    kv_dtype = inputs.kv_cache_dtype or flags.kv_cache_dtype or "auto"
    native = arch.max_position_embeddings
    context = max_model_len or inputs.max_model_len or flags.max_model_len or native or UNKNOWN_CONTEXT
    if _kv_engine(engine) == LLAMA_CPP:  # llama-server allocates every slot's context up front
        concurrency = inputs.concurrency or flags.max_num_seqs or LLAMA_CPP_DEFAULT_SLOTS
    else:  # vLLM checks one sequence of max_model_len at startup; more is what the user asks
        concurrency = inputs.concurrency or 1

    budget = gpu_memory_gb * utilization
    weights = total_weights / tp / 1e9
    overhead = engine_overhead_gb(arch, engine, tp, context=context, slots=concurrency, ubatch=flags.ubatch_size)
    engine = _kv_engine(engine)  # from here on the engines differ only in their overhead
    free = budget - weights - overhead
    per_token = kv_bytes_per_token(arch, tp, kv_dtype, engine)
    if per_token:
        capacity = max(0, math.floor(free * 1e9 / per_token))
        fit_len = capacity // concurrency
        if engine == LLAMA_CPP:
            fit_len = fit_len // CONTEXT_STEP * CONTEXT_STEP
    else:  # no KV cache: context is bounded by the model only
        capacity = 0
        fit_len = (native or context) if free >= 0 else 0
    if native:
        fit_len = min(fit_len, native)
    kv_gb = per_token * _cells(context, engine) * concurrency / 1e9
    reasons = []
    if free < 0:
        # llama-server holds one copy in RAM, whatever the cores: no per-GPU split to speak of
        held = f"{weights:.1f} GB per GPU at tensor-parallel size {tp}" if engine == VLLM else f"{weights:.1f} GB"
        reasons.append(
            f"weights need {held} plus {overhead:g} GB overhead, "
            f"but {gpu_memory_gb:g} GB × {utilization:g} gives {budget:.1f} GB"
        )
    elif per_token and kv_gb > free:
        refusal = (
            "vLLM would refuse: max seq len larger than the KV cache"
            if engine == VLLM
            else "llama-server would run out of memory allocating it"
        )
        where = "per GPU" if engine == VLLM else "in RAM"
        reasons.append(
            f"{concurrency} × {context} tokens need {kv_gb:.1f} GB of KV cache {where} but {free:.1f} GB remain: "
            f"at most {fit_len} tokens per sequence ({refusal})"
        )
    if native and context > native:
        reasons.append(f"max_model_len {context} exceeds the model's max_position_embeddings {native}")
    return MemoryFit.model_construct(  # every field is computed here: validation would only cost time
        tensor_parallel_size=tp,
        weights_gb=round(weights, 3),
        kv_bytes_per_token=per_token,
        kv_cache_gb=round(kv_gb, 3),
        overhead_gb=overhead,
        per_gpu_gb=round(weights + kv_gb + overhead, 3),
        gpu_memory_gb=round(budget, 2),
        gpu_memory_utilization=utilization,
        max_model_len=context,
        concurrency=concurrency,
        kv_cache_dtype=kv_dtype,
        weight_precision=precision_name,
        kv_capacity_tokens=capacity,
        max_model_len_fit=fit_len,
        fits=not reasons,
        reasons=reasons,
    )


def _kv_engine(engine: str) -> str:
    """The engine whose KV layout and slot rules apply (CUDA or measured variants: the same engine)."""
    return {LLAMA_CPP_CUDA: LLAMA_CPP, VLLM_MEASURED: VLLM}.get(engine, engine)


def engine_overhead_gb(
    arch: Architecture,
    engine: str,
    tp: int = 1,
    context: int = UNKNOWN_CONTEXT,
    slots: int = LLAMA_CPP_DEFAULT_SLOTS,
    ubatch: int | None = None,
) -> float:
    """What the engine holds per GPU besides weights and KV cache (the module docstring's sources);
    ``context`` (per slot), ``slots`` and ``ubatch`` size llama.cpp's buffers on CPU."""
    if engine == LLAMA_CPP:
        return round(llama_cpp_cpu_overhead_bytes(arch, context, slots, ubatch) / 1e9, 3)
    if engine == VLLM_MEASURED:
        return round(vllm_measured_overhead_gb(arch, tp), 3)
    if engine == LLAMA_CPP_CUDA:  # the larger of a micro-batch's logits and the graph measured on CPU
        logits = LLAMA_CPP_UBATCH * (arch.vocab_size or 32000) * 4
        graph = llama_cpp_graph_bytes(arch, context, slots, ubatch)
        return round(LLAMA_CPP_CUDA_CONTEXT_GB + max(logits, graph) / 1e9, 3)
    return OVERHEAD_GB[engine]


def llama_cpp_cpu_overhead_bytes(arch: Architecture, context: int, slots: int, ubatch: int | None = None) -> float:
    """llama-server's RSS on CPU besides weights and KV cache: its compute buffer (worst case: a
    micro-batch of ``ubatch`` prompt tokens), its logits buffer and the runtime with its tokenizer
    (the figures and where they were measured: the module docstring)."""
    vocab = arch.vocab_size or 32000
    output = slots * vocab * 4
    graph = llama_cpp_graph_bytes(arch, context, slots, ubatch)
    return graph + output + LLAMA_CPP_RUNTIME_MIB * 2**20 + vocab * LLAMA_CPP_VOCAB_BYTES


def llama_cpp_graph_bytes(arch: Architecture, context: int, slots: int, ubatch: int | None = None) -> int:
    """llama.cpp's compute buffer: the activations of one micro-batch and flash attention's mask."""
    hidden = arch.hidden_size or 4096
    ff = arch.intermediate_size or 4 * hidden  # the shape index lacks it for a few models: llama's ratio
    tokens = min(ubatch or LLAMA_CPP_UBATCH, _cells(context, LLAMA_CPP) * slots)
    return tokens * (12 * ff + 16 * hidden + 2 * _cells(context, LLAMA_CPP))


def vllm_measured_overhead_gb(arch: Architecture, tp: int = 1) -> float:
    activation = VLLM_ACTIVATION_GIB["moe" if (arch.experts or 0) > 1 else "dense"]
    non_torch = VLLM_NON_TORCH_GIB[1 if tp == 1 else 2]
    return (activation + non_torch) * GIB


def budget_flags(fit: MemoryFit, engine: str) -> str:
    """The flags that hold a model to its planned memory on a GPU it shares, so neither start order nor
    the engine's own sizing can take a neighbour's share: llama.cpp the context, slots and batch sizes
    the plan checked (``--max-model-len``/``--max-num-seqs`` as the local platform spells them); vLLM
    its KV cache in bytes (``--kv-cache-memory-bytes``, which skips vLLM's memory profiling)."""
    if engine in (LLAMA_CPP, LLAMA_CPP_CUDA):
        return (
            f"--max-model-len {fit.max_model_len} --max-num-seqs {fit.concurrency} "
            f"--batch-size {LLAMA_CPP_UBATCH} --ubatch-size {LLAMA_CPP_UBATCH}"
        )
    kv_bytes = fit.kv_bytes_per_token * fit.max_model_len * fit.concurrency  # exact: kv_cache_gb is rounded
    return f"--max-model-len {fit.max_model_len} --kv-cache-memory-bytes {kv_bytes}"


def _cells(context: int, engine: str) -> int:
    """KV cells one sequence takes: llama.cpp rounds each slot's context up to 256."""
    if engine == LLAMA_CPP:
        return -(-context // CONTEXT_STEP) * CONTEXT_STEP
    return context


def suggestion(
    arch: Architecture,
    fit: MemoryFit,
    gpu_memory_gb: float,
    inputs: CapacityInputs | None,
    flags: ConfigFlags | None,
    engine: str = VLLM,
) -> str | None:
    """The context flag (and ``--kv-cache-dtype fp8`` when that is what makes it fit) to pass so
    the engine starts with what the plan checked; None when even the weights do not fit."""
    context_flag = "--max-model-len"  # llama_flags takes vLLM's name for llama-server's per-slot context too
    slots = f" --max-num-seqs {fit.concurrency}" if engine == LLAMA_CPP else ""
    if fit.fits:
        flags_out = [f"{context_flag} {fit.max_model_len}{slots}"]
        if fit.kv_cache_dtype == "fp8" and engine == VLLM:
            flags_out.append("--kv-cache-dtype fp8")
        return " ".join(flags_out)
    if fit.weights_gb + fit.overhead_gb > fit.gpu_memory_gb:
        return None
    if fit.kv_cache_dtype == "auto" and engine == VLLM:
        fp8 = memory_fit(arch, fit.tensor_parallel_size, gpu_memory_gb, _with_kv(inputs, "fp8"), flags, engine)
        if fp8 is not None and fp8.fits:
            return f"{context_flag} {fp8.max_model_len} --kv-cache-dtype fp8"
    step = (fit.max_model_len_fit // CONTEXT_STEP) * CONTEXT_STEP or fit.max_model_len_fit
    return f"{context_flag} {step}{slots}" if step > 0 else None


def _with_kv(inputs: CapacityInputs | None, kv: str) -> CapacityInputs:
    return (inputs or CapacityInputs()).model_copy(update={"kv_cache_dtype": kv})


def fits_somewhere(fit: MemoryFit) -> bool:
    """The weights fit and at least a short context: what an estimated count needs when no context
    was asked and the model's native one fits nowhere."""
    return fit.max_model_len_fit >= min(FALLBACK_CONTEXT, fit.max_model_len)


@dataclass(frozen=True)
class Residency:
    """How many of a deployment's models may be resident (cores and memory held) together, what
    bounds it, and the cores the deployment holds for them; the others sleep until a request wakes
    them, the least recently used model that is not pinned going to sleep first."""

    limit: int
    bound: str  # what limits it: "cores", "memory", "max_resident" or "none"
    cores: int  # what the resident set may need at most: the deployment holds this many


def resident_together(
    models: list[tuple[int, float, bool]], cores: int, memory_gb: float | None, asked: int | None = None
) -> Residency:
    """``models``: (cores, GB, pinned) per model server.  The limit holds for *any* choice of
    resident models: the pinned ones plus the largest others by cores and, apart, by memory (a
    least-recently-used pick must never overfill the machine).  Raises ValueError when the pinned
    models alone, or the pinned ones with any single other, cannot fit."""
    pinned = [m for m in models if m[2]]
    others = [m for m in models if not m[2]]
    base_cores, base_gb = sum(m[0] for m in pinned), sum(m[1] for m in pinned)
    memory = math.inf if memory_gb is None else memory_gb
    if base_cores > cores or base_gb > memory:
        which = "cores" if base_cores > cores else "memory"
        have = f"{cores} cores" if which == "cores" else f"{memory:.1f} GB of memory"
        need = f"{base_cores} cores" if which == "cores" else f"{base_gb:.1f} GB"
        raise ValueError(f"the pinned models need {need} together but this machine has {have} for them")
    by_cores = sorted((m[0] for m in others), reverse=True)
    by_memory = sorted((m[1] for m in others), reverse=True)
    fit, bound = 0, "none"
    while fit < len(others):
        if base_cores + sum(by_cores[: fit + 1]) > cores:
            bound = "cores"
            break
        if base_gb + sum(by_memory[: fit + 1]) > memory:
            bound = "memory"
            break
        fit += 1
    if others and fit == 0:
        raise ValueError(f"no model that is not pinned fits beside the pinned ones (by {bound})")
    limit = len(pinned) + fit
    if asked is not None and asked < limit:
        limit, bound, fit = max(asked, len(pinned)), "max_resident", max(0, asked - len(pinned))
    return Residency(limit=limit, bound=bound, cores=min(cores, base_cores + sum(by_cores[:fit])))


__all__ = [
    "OVERHEAD_GB",
    "VLLM_MEASURED",
    "LLAMA_CPP_CUDA",
    "engine_overhead_gb",
    "llama_cpp_cpu_overhead_bytes",
    "llama_cpp_graph_bytes",
    "budget_flags",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "ConfigFlags",
    "config_flags",
    "memory_fit",
    "suggestion",
    "fits_somewhere",
    "Residency",
    "resident_together",
]
