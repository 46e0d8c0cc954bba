"""Several models on one GPU, locally (issue 29, items 2 and 3): the packing planner's placements and
budgets, and the vLLM memory model held against llm-d-benchmark's measured table."""

from __future__ import annotations

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
