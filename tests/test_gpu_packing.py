"""Several models on one GPU, locally (issue 29, items 2 and 3): the packing planner's placements and
budgets, and the vLLM memory model held against llm-d-benchmark's measured table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqua_lab.domain import CapacityInputs
from aqua_lab.planning.allocate import SHARING_IS_LOCAL, pack_shared
from aqua_lab.planning.capacity import VLLM, VLLM_MEASURED, budget_flags, memory_fit

pytestmark = pytest.mark.planning

H100_USABLE = 85.0 * 0.9


@pytest.mark.parametrize(
    ("gpus", "needs", "primary", "placed", "note_of_b"),
    [
        # one GPU, three small models: all on GPU 0, each within its need
        (1, {"a": (1, 20.0), "b": (1, 10.0), "c": (1, 5.0)}, None, {"a": [0], "b": [0], "c": [0]},
         "shares GPU 0 with 'a', 'c'"),
        # two GPUs: the primary alone, the other two share the second
        (2, {"a": (1, 20.0), "b": (1, 10.0), "c": (1, 5.0)}, "a", {"a": [0], "b": [1], "c": [1]},
         "shares GPU 1 with 'c'"),
        # the primary's GPU is the last to be shared, even when it has the most room
        (2, {"b": (1, 30.0), "a": (1, 5.0), "c": (1, 5.0)}, "a", {"b": [1], "a": [0], "c": [1]},
         "shares GPU 1 with 'c'"),
        # enough GPUs: nothing shares
        (3, {"a": (1, 20.0), "b": (1, 10.0), "c": (1, 5.0)}, None, {"a": [0], "b": [1], "c": [2]}, None),
        # a tensor-parallel model keeps its GPUs whole; the small ones share what is left
        (4, {"big": (2, 60.0), "a": (1, 10.0), "b": (1, 10.0), "c": (1, 10.0)}, "big",
         {"big": [0, 1], "a": [2], "b": [3], "c": [2]}, None),
    ],
)  # fmt: skip
def test_packing_table(gpus, needs, primary, placed, note_of_b):
    result = pack_shared(gpus, H100_USABLE, needs, primary)
    assert result.fits and result.gpus == placed
    assert result.note("b") == note_of_b
    assert result.budgets_gb == {m: need for m, (_, need) in needs.items()}


def test_what_does_not_fit_says_which_model_and_why():
    too_big = pack_shared(1, H100_USABLE, {"a": (1, 50.0), "b": (1, 40.0)})
    assert not too_big.fits
    assert too_big.reasons == ["model 'b' needs 40.0 GB but no GPU it may share has that much left (GPU 0: 26.5 GB)"]
    above = pack_shared(2, H100_USABLE, {"a": (1, 5.0), "b": (2, 5.0)}, "a")
    assert above.reasons == ["model 'b' gets 2 GPUs, more than the primary 'a' (1)"]
    whole = pack_shared(2, H100_USABLE, {"x": (2, 5.0), "y": (1, 5.0)})
    assert not whole.fits and whole.reasons == [
        "model 'y' needs 5.0 GB but no GPU it may share has that much left (GPU 0: whole to 'x', GPU 1: whole to 'x')"
    ]


def test_oci_plans_keep_whole_gpus_and_say_sharing_is_local():
    assert "local platform" in SHARING_IS_LOCAL and "whole GPUs" in SHARING_IS_LOCAL


needs_strategy = st.dictionaries(
    st.sampled_from("abcdefgh"),
    st.tuples(st.sampled_from([1, 1, 1, 2, 4]), st.floats(0.5, 80.0)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(gpus=st.sampled_from([1, 2, 4, 8]), needs=needs_strategy, data=st.data())
def test_no_gpu_is_over_committed_and_the_primary_rule_holds(gpus, needs, data):
    primary = data.draw(st.sampled_from([None, *needs]))
    result = pack_shared(gpus, H100_USABLE, needs, primary)
    if not result.fits:
        assert result.reasons
        return
    on: dict[int, float] = {}
    for model, placed in result.gpus.items():
        count, need = needs[model]
        assert len(placed) == count == len(set(placed)) and all(0 <= g < gpus for g in placed)
        for g in placed:
            on[g] = on.get(g, 0.0) + result.budgets_gb[model]
        if count > 1:  # tensor-parallel GPUs are never shared
            assert all(result.gpus[m] == placed or not set(result.gpus[m]) & set(placed) for m in needs)
    assert all(total <= H100_USABLE + 1e-6 for total in on.values()), on  # budgets sum ≤ usable memory
    if primary is not None:
        assert all(needs[primary][0] >= c for c, _ in needs.values())
        sharers = len(result.shared.get(result.gpus[primary][0], [primary]))
        if len(needs) <= gpus and all(c == 1 for c, _ in needs.values()):
            assert sharers == 1  # the primary shares only when there are more models than GPUs


def test_budget_flags_hold_each_engine_to_its_plan(catalog):
    arch = catalog.model_input("meta-llama/Meta-Llama-3.1-8B-Instruct").architecture
    fit = memory_fit(arch, 1, 40.0, CapacityInputs(max_model_len=8192), engine=VLLM_MEASURED)
    assert budget_flags(fit, VLLM) == f"--max-model-len 8192 --kv-cache-memory-bytes {131072 * 8192}"
    llama = memory_fit(arch, 1, 40.0, CapacityInputs(max_model_len=4096, concurrency=2), engine="llama.cpp-cuda")
    assert budget_flags(llama, "llama.cpp-cuda") == (
        "--max-model-len 4096 --max-num-seqs 2 --batch-size 512 --ubatch-size 512"
    )


GIB = 2**30 / 1e9
H100_TOTAL_GB = 79.18 * GIB  # what vLLM's profiler sees on an H100 80GB (the table's "79.18 GiB")


@pytest.mark.parametrize(
    ("model", "measured_kv_gib"),
    [("meta-llama/Meta-Llama-3.1-8B-Instruct", 51.38), ("openai/gpt-oss-20b", 50.28)],
)
def test_the_planner_matches_vllms_measured_kv_room_on_an_h100(catalog, model, measured_kv_gib):
    """llm-d-benchmark config_explorer/empirical-vllm-memory-results.md: H100, utilisation 0.9,
    16 000 tokens; the KV room the planner leaves is within 5 % of what vLLM allocated."""
    arch = catalog.model_input(model).architecture
    fit = memory_fit(arch, 1, H100_TOTAL_GB, CapacityInputs(max_model_len=16000), engine=VLLM_MEASURED)
    room_gb = fit.kv_capacity_tokens * fit.kv_bytes_per_token / 1e9
    measured_gb = measured_kv_gib * GIB
    assert fit.fits
    assert room_gb == pytest.approx(measured_gb, rel=0.05), f"{model}: {room_gb:.2f} vs {measured_gb:.2f} GB"


# --------------------------------------------------------------------------------------------------
# The packer in plans: the local platform on GPUs shares them; OCI keeps them whole


def _gpu_service(tmp_path, gpus: int, vllm: bool = True):
    from aqua_lab.platforms.local import LocalPlatform, hardware
    from aqua_lab.service import AquaLabService

    smi = "\n".join(f"{i}, NVIDIA H100 80GB HBM3, 81559" for i in range(gpus))  # what nvidia-smi prints
    shape = hardware.local_shape(gpus=hardware.parse_nvidia_smi(smi), cores=16, ram_gb=128)
    platform = LocalPlatform(data_dir=tmp_path / "data", shape=shape)
    platform.engine, platform.params_key = ("vllm", "VLLM_PARAMS") if vllm else ("llama_cpp", "LLAMA_CPP_PARAMS")
    return AquaLabService(platform), shape.name


SMOL = "smollm2-135m-instruct"


@pytest.mark.local
def test_a_local_gpu_plan_packs_three_models_on_two_gpus_each_within_its_budget(tmp_path):
    service, shape = _gpu_service(tmp_path, 2)
    plan = service.plan([SMOL, SMOL, SMOL], primary_model_id=SMOL)
    assert shape in plan.gpu_allocation, plan.incompatible_shapes  # the whole-GPU split could not hold 3 on 2
    split = plan.gpu_allocation[shape]
    first, second, third = split.models
    assert [m.gpu_indices for m in split.models] == [[0], [1], [1]]  # the primary alone on GPU 0
    assert first.sharing is None and second.sharing == "shares GPU 1 with 'SmolLM2-135M-Instruct-3'"
    assert third.sharing == "shares GPU 1 with 'SmolLM2-135M-Instruct-2'"
    assert "'SmolLM2-135M-Instruct-2' shares GPU 1 with 'SmolLM2-135M-Instruct-3'" in split.notes
    assert split.used_gpus == 2 and split.primary_honoured is True
    kv = second.memory.kv_bytes_per_token * second.memory.max_model_len
    fraction = math.ceil(second.memory.per_gpu_gb / 85.5 * 1e4) / 1e4  # for vLLM before --kv-cache-memory-bytes
    assert second.parameters["VLLM_PARAMS"].endswith(
        f"--kv-cache-memory-bytes {kv} --gpu-memory-utilization {fraction:g}"
    )
    for stack in split.gpu_stacks():
        assert sum(budget for _, budget in stack) <= split.gpu_usable_in_gbs
    assert split.gpu_stacks()[1] == [(SMOL, second.memory_budget_in_gbs), (SMOL, third.memory_budget_in_gbs)]


@pytest.mark.local
def test_llama_cpp_on_cuda_gets_its_budget_as_context_slots_and_batch_sizes(tmp_path):
    service, shape = _gpu_service(tmp_path, 1, vllm=False)
    split = service.plan([SMOL, SMOL]).gpu_allocation[shape]
    assert [m.gpu_indices for m in split.models] == [[0], [0]]
    params = split.models[0].parameters["LLAMA_CPP_PARAMS"]
    fit = split.models[0].memory
    assert f"--max-model-len {fit.max_model_len} --max-num-seqs {fit.concurrency}" in params
    assert "--batch-size 512 --ubatch-size 512" in params
    assert split.models[0].memory_budget_in_gbs == fit.per_gpu_gb  # the llama.cpp-CUDA memory model


@pytest.mark.local
def test_enough_gpus_means_nothing_shares(tmp_path):
    service, shape = _gpu_service(tmp_path, 2)
    split = service.plan([SMOL, SMOL]).gpu_allocation[shape]
    assert not split.shares_gpus and all(m.sharing is None for m in split.models)


@pytest.mark.local
def test_a_cpu_machine_plan_is_unchanged(tmp_path):
    from aqua_lab.platforms.local import LocalPlatform, hardware
    from aqua_lab.service import AquaLabService

    shape = hardware.local_shape(gpus=[], cores=2, ram_gb=16)
    plan = AquaLabService(LocalPlatform(data_dir=tmp_path, shape=shape)).plan([SMOL, SMOL, SMOL])
    assert not plan.gpu_allocation
    assert all(SHARING_IS_LOCAL not in r for r in plan.incompatible_shapes[shape.name])


def test_oci_plans_keep_whole_gpus_and_say_sharing_is_a_local_capability():
    from aqua_lab.service import AquaLabService

    small = "meta-llama/Llama-3.2-1B-Instruct"  # configured for VM.GPU.A10.2, a fraction of one A10 each
    plan = AquaLabService("bundled").plan([small, small, small])
    assert all(not s.shares_gpus for s in plan.gpu_allocation.values())
    assert plan.incompatible_shapes["VM.GPU.A10.2"] == [
        "3 models need at least one GPU each but the shape has 2",
        SHARING_IS_LOCAL,
    ]


@pytest.mark.local
@pytest.mark.cli
def test_the_cli_plan_draws_each_shared_gpu_and_says_who_shares(tmp_path):
    from aqua_lab.cli.planning import render_plan

    service, shape = _gpu_service(tmp_path, 2)
    text = render_plan(service.plan([SMOL, SMOL, SMOL], primary_model_id=SMOL), service)
    budget = service.plan([SMOL, SMOL, SMOL]).gpu_allocation[shape].models[0].memory_budget_in_gbs
    assert f"  GPU 0: A {budget:.1f} GB, {76.95 - budget:.1f} of 76.95 GB free" in text
    assert f"  GPU 1: A {budget:.1f} GB + A {budget:.1f} GB, {76.95 - 2 * budget:.1f} of 76.95 GB free" in text
    assert "note: 'SmolLM2-135M-Instruct-2' shares GPU 1 with 'SmolLM2-135M-Instruct-3'" in text


@pytest.mark.local
@pytest.mark.widgets
def test_the_widget_draws_a_stacked_bar_per_gpu_with_each_budget_and_the_free_room(tmp_path):
    import re

    from aqua_lab.widgets import GpuSplit

    service, shape = _gpu_service(tmp_path, 2)
    split = GpuSplit(service)
    split.refresh([SMOL, SMOL, SMOL], SMOL)
    html = split.table.value
    rows = re.findall(r'<div class="aqua-gpu-stack" data-gpu="(\d)"', html)
    assert rows == ["0", "1"]  # one row per GPU, not one cell per model
    parts = re.findall(r'class="aqua-gpu-part" data-served="([^"]+)"', html)
    assert parts == ["SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct-2", "SmolLM2-135M-Instruct-3"]
    budget = split.plan.gpu_allocation[shape].models[1].memory_budget_in_gbs
    assert f"{76.95 - 2 * budget:.1f} GB free" in html  # GPU 1 holds two budgets
    assert html.count("shares GPU 1 with") == 2  # on the two legend lines, not again as notes
    assert f"budget {budget:.1f} GB on GPU 1" in html
