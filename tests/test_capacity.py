"""The capacity planner: architecture facts, the per-GPU memory model, vLLM's tensor-parallel rule,
and plans that use them (estimated counts, memory figures, warnings, suggestions)."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from pydantic import ValidationError

from aqua_lab.domain import Architecture, CapacityInputs, DeploymentConfig, DeploymentSpec, ModelInput
from aqua_lab.errors import InvalidInput
from aqua_lab.planning import ShapeCatalog, plan
from aqua_lab.planning.architectures import (
    from_gguf_metadata,
    from_hf_config,
    kv_bytes_per_token,
    precision_bytes,
    tensor_parallel_problem,
    weight_bytes,
)
from aqua_lab.planning.capacity import config_flags, memory_fit
from aqua_lab.planning.validate import validate_deployment

pytestmark = pytest.mark.planning


def test_every_bundled_service_model_has_an_architecture_row_with_its_source(catalog):
    table = json.loads(resources.files("aqua_lab.data").joinpath("model_architectures.json").read_text())
    rows = {r["model"]: r for r in table["rows"]}
    assert set(rows) == {m.id for m in catalog.models}
    for model in catalog.models:
        arch = catalog.model_input(model.id).architecture
        assert arch is not None and arch.missing() == [], model.id
        assert rows[model.id]["source"].startswith("https://huggingface.co/" + model.id), model.id
        assert arch.attention_heads and arch.max_position_embeddings and arch.vocab_size and arch.dtype
        assert arch.attention_heads % arch.kv_heads == 0 or not arch.kv_cache, model.id


@pytest.mark.parametrize(
    ("model", "kv_bytes", "weights_gb"),
    [
        # 2 (K,V) × layers × KV heads × head dim × 2 bytes (bf16); weights = parameters × 2 bytes
        ("meta-llama/Meta-Llama-3.1-8B-Instruct", 2 * 32 * 8 * 128 * 2, 16.06),
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", 2 * 80 * 8 * 128 * 2, 141.11),
        ("mistralai/Mistral-7B-Instruct-v0.3", 2 * 32 * 8 * 128 * 2, 14.50),
        ("google/gemma-7b", 2 * 28 * 16 * 256 * 2, 17.08),
        ("microsoft/Phi-3-mini-4k-instruct", 2 * 32 * 32 * 96 * 2, 7.64),
        ("microsoft/phi-4", 2 * 40 * 10 * 128 * 2, 29.32),
        ("tiiuae/falcon-7b", 2 * 32 * 1 * 64 * 2, 14.43),
        ("ibm-granite/granite-4.0-tiny-preview", 2 * 4 * 4 * 128 * 2, 13.88),  # only 4 attention layers
        ("ibm-granite/granite-embedding-278m-multilingual", 0, 0.56),  # encoder: no KV cache, fp32 served in 16 bits
        ("openai/gpt-oss-120b", 2 * 36 * 8 * 64 * 2, 65.25),  # MXFP4 checkpoint: its published size
    ],
)
def test_kv_bytes_per_token_and_weights_from_published_configs(catalog, model, kv_bytes, weights_gb):
    arch = catalog.model_input(model).architecture
    assert kv_bytes_per_token(arch) == kv_bytes
    assert weight_bytes(arch, None)[0] / 1e9 == pytest.approx(weights_gb, abs=0.01)


def test_kv_heads_split_over_gpus_and_are_replicated_past_their_number(catalog):
    arch = catalog.model_input("meta-llama/Meta-Llama-3.1-70B-Instruct").architecture  # 8 KV heads
    per_layer = 2 * 80 * 128 * 2
    assert kv_bytes_per_token(arch, tp=2) == per_layer * 4
    assert kv_bytes_per_token(arch, tp=8) == per_layer * 1
    assert kv_bytes_per_token(arch, tp=16) == per_layer * 1  # replicated: still one head per GPU
    assert kv_bytes_per_token(arch, tp=1, kv_dtype="fp8") == per_layer * 8 // 2


def test_tensor_parallel_rule_on_a_model_whose_kv_heads_are_not_a_power_of_two(catalog):
    phi4 = catalog.model_input("microsoft/phi-4").architecture  # 40 heads, 10 KV heads
    assert tensor_parallel_problem(phi4, 2) is None
    assert tensor_parallel_problem(phi4, 5) is None  # 40 % 5 == 0 and 10 % 5 == 0
    assert tensor_parallel_problem(phi4, 4) == (
        "10 KV heads: tensor-parallel size 4 neither divides them nor is a multiple of them"
    )
    assert "neither divides" in tensor_parallel_problem(phi4, 8)
    falcon = catalog.model_input("tiiuae/falcon-7b").architecture  # 71 heads, 1 KV head
    assert tensor_parallel_problem(falcon, 2) == "71 attention heads are not divisible by tensor-parallel size 2"
    llama = catalog.model_input("meta-llama/Meta-Llama-3.1-70B-Instruct").architecture
    assert all(tensor_parallel_problem(llama, tp) is None for tp in (1, 2, 4, 8, 16, 32, 64))


def test_config_counts_that_break_the_tensor_parallel_rule_are_rejected_with_a_warning(catalog):
    phi4 = catalog.model_input("microsoft/phi-4").model_copy(
        update={"config": _config({"BM.GPU.A10.4": [2, 4]}), "model_id": "phi4-custom"}
    )
    result = plan([phi4], catalog.shapes)
    alloc = result.gpu_allocation["BM.GPU.A10.4"]
    assert [m.gpu_count for m in alloc.models] == [2]
    assert (
        "model 'microsoft/phi-4': its config allows 4 GPUs on BM.GPU.A10.4, which vLLM refuses "
        "(10 KV heads: tensor-parallel size 4 neither divides them nor is a multiple of them)"
    ) in result.warnings


def test_memory_figures_per_gpu_against_memory_times_utilisation(catalog):
    arch = catalog.model_input("meta-llama/Meta-Llama-3.1-8B-Instruct").architecture
    fit = memory_fit(arch, 1, 24.0, CapacityInputs(max_model_len=8192, concurrency=4))
    assert fit.weights_gb == 16.06
    assert fit.kv_bytes_per_token == 131072
    assert fit.kv_cache_gb == pytest.approx(131072 * 8192 * 4 / 1e9, abs=0.01)
    assert fit.overhead_gb == 2.0
    assert fit.gpu_memory_gb == pytest.approx(21.6)
    free = 21.6 - 16.06 - 2.0
    assert fit.kv_capacity_tokens == pytest.approx(free * 1e9 / 131072, abs=1)
    assert fit.max_model_len_fit == fit.kv_capacity_tokens // 4 == 6752
    assert fit.per_gpu_gb == pytest.approx(16.06 + 4.29 + 2.0, abs=0.01)
    assert fit.fits is False
    assert fit.reasons == [
        "4 × 8192 tokens need 4.3 GB of KV cache per GPU but 3.5 GB remain: at most 6752 tokens per sequence "
        "(vLLM would refuse: max seq len larger than the KV cache)"
    ]
    assert memory_fit(arch, 1, 24.0, CapacityInputs(max_model_len=8192, concurrency=2)).fits


def test_what_if_inputs_change_the_fit(catalog):
    arch = catalog.model_input("meta-llama/Meta-Llama-3.1-8B-Instruct").architecture
    base = memory_fit(arch, 1, 24.0, CapacityInputs(max_model_len=32768))
    assert not base.fits and "at most 27008 tokens" in base.reasons[0]
    fp8 = memory_fit(arch, 1, 24.0, CapacityInputs(max_model_len=32768, kv_cache_dtype="fp8"))
    assert fp8.fits and fp8.kv_capacity_tokens == 2 * base.kv_capacity_tokens
    int4 = memory_fit(arch, 1, 24.0, CapacityInputs(max_model_len=32768, weight_precision="int4"))
    assert int4.weights_gb == pytest.approx(4.015, abs=0.01) and int4.fits
    gguf = memory_fit(arch, 1, 24.0, CapacityInputs(weight_precision="Q4_K_M"))
    assert gguf.weights_gb == pytest.approx(8.03 * 4.83 / 8, abs=0.01)
    tight = memory_fit(arch, 1, 24.0, CapacityInputs(max_model_len=4096, gpu_memory_utilization=0.75))
    assert not tight.fits and tight.reasons[0].startswith("weights need 16.1 GB per GPU")
    assert memory_fit(arch, 1, 80.0).max_model_len == 131072  # vLLM's default: the model's own


def test_config_flags_feed_the_model_unless_the_user_overrides_them():
    flags = config_flags("--trust-remote-code --max_model_len 4096 --gpu_memory_utilization 0.95 --max-num-seqs 16")
    assert (flags.max_model_len, flags.gpu_memory_utilization, flags.max_num_seqs) == (4096, 0.95, 16)
    assert config_flags("--quantization mxfp4").weight_precision == "mxfp4"
    assert config_flags("--kv-cache-dtype fp8_e5m2").kv_cache_dtype == "fp8"
    assert config_flags("--n_ctx 2048").max_model_len == 2048
    arch = Architecture(parameters_b=1.0, layers=16, kv_heads=8, head_dim=64, max_position_embeddings=131072)
    fit = memory_fit(arch, 1, 24.0, CapacityInputs(max_model_len=8192), flags)
    assert (fit.max_model_len, fit.gpu_memory_utilization) == (8192, 0.95)


def test_model_without_config_gets_counts_from_the_memory_model(catalog):
    arch = catalog.model_input("meta-llama/Meta-Llama-3.1-70B-Instruct").architecture
    custom = ModelInput(model_id="my-70b", name="my-70b", architecture=arch, parameter_count_b=70.6)
    result = plan([custom], ShapeCatalog([catalog.shapes.get("BM.GPU.H100.8")]))
    alloc = result.gpu_allocation["BM.GPU.H100.8"]
    (planned,) = alloc.models
    assert planned.estimated and result.estimated_models == ["my-70b"]
    assert planned.gpu_count == 8  # alone: the allocator fills the shape with the largest fitting count
    assert planned.memory.fits and planned.memory.tensor_parallel_size == 8
    assert planned.suggested_parameters == "--max-model-len 131072"
    assert "estimated from its architecture" in result.warnings[0]
    # 2 GPUs cannot hold 141 GB of weights; 4 can, with the full context
    two = plan(
        [custom, custom.model_copy(update={"model_id": "b"})], ShapeCatalog([catalog.shapes.get("BM.GPU.H100.8")])
    )
    assert [m.gpu_count for m in two.gpu_allocation["BM.GPU.H100.8"].models] == [4, 4]
    on_a10 = plan([custom], ShapeCatalog([catalog.shapes.get("BM.GPU.A10.4")]))
    assert on_a10.error_message is not None
    assert (
        "does not fit on 4 GPUs of 24 GB: weights need 35.3 GB per GPU" in on_a10.incompatible_shapes["BM.GPU.A10.4"][0]
    )


def test_estimate_without_an_asked_context_falls_back_to_a_short_one_and_says_which(catalog):
    arch = catalog.model_input("meta-llama/Meta-Llama-3.1-8B-Instruct").architecture
    custom = ModelInput(model_id="my-8b", name="my-8b", architecture=arch)
    result = plan([custom], ShapeCatalog([catalog.shapes.get("VM.GPU.A10.1")]))
    (planned,) = result.gpu_allocation["VM.GPU.A10.1"].models
    assert not planned.memory.fits and planned.memory.max_model_len_fit == 27008
    assert planned.suggested_parameters == "--max-model-len 26880"
    asked = plan(
        [custom], ShapeCatalog([catalog.shapes.get("VM.GPU.A10.1")]), capacity=CapacityInputs(max_model_len=65536)
    )
    assert asked.error_message is not None  # an asked context is a requirement, not a hint


def test_config_max_model_len_that_cannot_fit_is_noted_with_an_fp8_suggestion(catalog):
    models = [catalog.model_input("meta-llama/Meta-Llama-3.1-8B-Instruct"), catalog.model_input("openai/gpt-oss-20b")]
    result = plan(models, catalog.shapes, capacity=CapacityInputs(concurrency=4))
    alloc = result.gpu_allocation["BM.GPU.L40S-NC.4"]
    note = next(n for n in alloc.notes if "Meta-Llama-3.1-8B-Instruct" in n)
    assert "4 × 131072 tokens need 34.4 GB of KV cache per GPU" in note
    assert alloc.models[0].suggested_parameters == "--max-model-len 131072 --kv-cache-dtype fp8"
    assert result.capacity.concurrency == 4


def test_unknown_weight_precision_is_a_clear_input_error():
    with pytest.raises(ValidationError) as err:
        CapacityInputs(weight_precision="q9")
    (problem,) = InvalidInput.from_validation(err.value).problems
    assert problem.field == "weight_precision" and "use one of auto, bf16" in problem.message
    assert "Q4_K_M" in problem.message
    assert CapacityInputs(weight_precision="q4_k_m").weight_precision == "q4_k_m"


def test_missing_facts_are_said_not_guessed():
    partial = Architecture(parameters_b=7.0, layers=32, source="config.json")
    assert partial.missing() == ["kv_heads", "head_dim"]
    model = ModelInput(model_id="x", name="x", architecture=partial, parameter_count_b=7.0)
    shapes = ShapeCatalog([_shape("VM.GPU.A10.2", 2, 48)])
    result = plan([model], shapes)
    assert "kv_heads, head_dim unknown" in result.warnings[0] and "2 bytes per parameter" in result.warnings[0]


def test_hf_config_parsing_covers_multimodal_falcon_and_quantised_configs():
    mllama = {
        "architectures": ["MllamaForConditionalGeneration"],
        "torch_dtype": "bfloat16",
        "text_config": {
            "num_hidden_layers": 40,
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 131072,
            "vocab_size": 128256,
        },
    }
    arch = from_hf_config(mllama, "config.json")
    assert (arch.layers, arch.kv_heads, arch.head_dim, arch.dtype) == (40, 8, 128, "bfloat16")
    falcon = from_hf_config({"n_layer": 32, "hidden_size": 4544, "n_head": 71, "multi_query": True}, "f")
    assert (falcon.layers, falcon.attention_heads, falcon.kv_heads, falcon.head_dim) == (32, 71, 1, 64)
    fp8 = from_hf_config({"num_hidden_layers": 2, "quantization_config": {"quant_method": "fp8"}}, "q")
    assert fp8.dtype == "fp8"
    hybrid = from_hf_config({"num_hidden_layers": 4, "layer_types": ["mamba", "attention", "mamba", "mamba"]}, "h")
    assert hybrid.attention_layers == 1
    assert from_hf_config({"model_type": "xlm-roberta", "num_hidden_layers": 12}, "e").kv_cache is False


def test_gguf_metadata_parsing():
    meta = {
        "general.architecture": "llama",
        "general.file_type": 3,
        "llama.block_count": 30,
        "llama.embedding_length": 576,
        "llama.attention.head_count": 9,
        "llama.attention.head_count_kv": 3,
        "llama.context_length": 8192,
        "tokenizer.ggml.tokens.count": 49152,
        "parameters": 134515008,
        "tensor_bytes": 91_000_000,
    }
    arch = from_gguf_metadata(meta, "smol.gguf")
    assert (arch.layers, arch.kv_heads, arch.head_dim, arch.dtype, arch.vocab_size) == (30, 3, 64, "Q4_1", 49152)
    assert arch.weight_bytes == 91_000_000 and arch.parameters_b == pytest.approx(0.1345, abs=1e-4)
    assert kv_bytes_per_token(arch, engine="llama.cpp") == 2 * 30 * 3 * 64 * 2


def test_precision_names():
    assert precision_bytes("bf16") == 2 and precision_bytes("FP8") == 1 and precision_bytes("int4") == 0.5
    assert precision_bytes("q8_0") == 8.5 / 8 and precision_bytes("Q4_K_M") == 4.83 / 8
    assert precision_bytes("nope") is None


def _config(entries: dict[str, list[int]]) -> DeploymentConfig:
    return DeploymentConfig.model_validate(
        {
            "shape": list(entries),
            "configuration": {
                s: {"multi_model_deployment": [{"gpu_count": c} for c in counts]} for s, counts in entries.items()
            },
        }
    )


def _shape(name: str, gpus: int, memory_gb: float):
    from aqua_lab.domain import GpuSpec, Shape

    return Shape(name=name, gpu_specs=GpuSpec(gpu_count=gpus, gpu_memory_in_gbs=memory_gb, gpu_type="A10"))


def _validate(catalog, models, shape="BM.GPU.A10.4"):
    spec = DeploymentSpec(models=models, instance_shape=shape, display_name="capacity")
    known = {m["model_id"]: catalog.model_input(m["model_id"]) for m in models}
    return validate_deployment(spec, known, catalog.shapes, catalog.suggest)


def test_a_deployment_request_whose_context_cannot_fit_is_warned_with_the_fix(catalog):
    llama = "meta-llama/Meta-Llama-3.1-8B-Instruct"
    ok = _validate(catalog, [{"model_id": llama, "gpu_count": 1}])  # its config's --max-model-len 4096 fits
    assert not any("KV cache" in w for w in ok.warnings)
    long = _validate(catalog, [{"model_id": llama, "gpu_count": 1, "params": "--max-model-len 65536"}])
    assert (
        "models[0]: 'meta-llama/Meta-Llama-3.1-8B-Instruct' on 1 GPU(s) of BM.GPU.A10.4: 1 × 65536 tokens need "
        "8.6 GB of KV cache per GPU but 3.5 GB remain: at most 27008 tokens per sequence (vLLM would refuse: max seq "
        "len larger than the KV cache); pass --max-model-len 26880"
    ) in long.warnings
    fp8 = _validate(
        catalog, [{"model_id": llama, "gpu_count": 1, "params": "--max-model-len 32768 --kv-cache-dtype fp8"}]
    )
    assert not any("KV cache per GPU" in w for w in fp8.warnings)


def test_a_deployment_request_that_breaks_the_tensor_parallel_rule_is_refused(catalog):
    phi4 = catalog.model_input("microsoft/phi-4").model_copy(update={"config": _config({"BM.GPU.A10.4": [2, 4]})})
    spec = DeploymentSpec(
        models=[{"model_id": phi4.model_id, "gpu_count": 4}], instance_shape="BM.GPU.A10.4", display_name="x"
    )
    with pytest.raises(InvalidInput) as err:
        validate_deployment(spec, {phi4.model_id: phi4}, catalog.shapes, catalog.suggest)
    (problem,) = err.value.problems
    assert problem.field == "models[0].gpu_count" and problem.fix == "use one of [2]"
    assert "cannot run on 4 GPUs: 10 KV heads: tensor-parallel size 4 neither divides them" in problem.message


def test_a_precision_the_facts_cannot_size_is_said():
    gguf_only = Architecture(weight_bytes=4_000_000_000, layers=32, kv_heads=8, head_dim=128, attention_heads=32)
    model = ModelInput(model_id="g", name="g", architecture=gguf_only)
    shapes = ShapeCatalog([_shape("VM.GPU.A10.2", 2, 48)])
    assert plan([model], shapes).gpu_allocation  # its own bytes size it
    result = plan([model], shapes, capacity=CapacityInputs(weight_precision="int4"))
    assert (
        "its size at weight precision 'int4' is unknown (no parameter count)"
        in result.incompatible_shapes["VM.GPU.A10.2"][0]
    )
