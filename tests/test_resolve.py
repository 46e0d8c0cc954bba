"""Config resolution: compatible shapes, reasons for the others, estimates for unconfigured models."""

from __future__ import annotations

import json

import pytest

from aqua_lab.domain import DeploymentConfig, ModelInput, Plan
from aqua_lab.errors import InvalidInput
from aqua_lab.planning import ShapeCatalog, plan
from aqua_lab.planning.architectures import tensor_parallel_problem
from aqua_lab.planning.resolve import NO_ALLOCATION, NO_COMMON_SHAPE

pytestmark = pytest.mark.planning


def _config(entries: dict[str, list[int]], single: list[str] | None = None) -> DeploymentConfig:
    return DeploymentConfig.model_validate(
        {
            "shape": single if single is not None else list(entries),
            "configuration": {
                s: {"multi_model_deployment": [{"gpu_count": c} for c in counts]} for s, counts in entries.items()
            },
        }
    )


def test_every_service_model_plans_alone_on_every_shape_the_table_lists(catalog):
    rows = json.loads(
        (
            __import__("importlib.resources").resources.files("aqua_lab.data")
            / "multimodel_supported_service_models.json"
        ).read_text()
    )["rows"]
    table: dict[str, set[str]] = {}
    for row in rows:
        table.setdefault(row["model"], set()).add(catalog.shapes.canonical(row["shape"]))
    assert len(table) == 52
    for name, shapes in table.items():
        result = plan([catalog.model_input(name)], catalog.shapes)
        assert result.error_message is None, name
        assert shapes <= set(result.gpu_allocation), (name, shapes - set(result.gpu_allocation))
        arch = catalog.model_input(name).architecture
        for shape in shapes:  # deployed alone, a model may take the whole shape — if vLLM can split it so
            alloc = result.gpu_allocation[shape]
            whole = alloc.total_gpus_available
            if tensor_parallel_problem(arch, whole):
                assert alloc.models[0].gpu_count < whole
                assert any(f"allows {whole} GPUs on {shape}, which vLLM refuses" in w for w in result.warnings)
            else:
                assert alloc.models[0].gpu_count == whole


def test_every_pair_of_service_models_sharing_a_shape_gets_a_valid_plan(catalog):
    names = [m.id for m in catalog.models]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            result = plan([catalog.model_input(a), catalog.model_input(b)], catalog.shapes)
            for shape, alloc in result.gpu_allocation.items():
                counts = [m.gpu_count for m in alloc.models]
                assert sum(counts) <= alloc.total_gpus_available
                assert all(c & (c - 1) == 0 and c > 0 for c in counts)
                for model, count in zip((a, b), counts, strict=True):
                    allowed = [e.gpu_count for e in catalog.configs[model].configuration[shape].multi_model_deployment]
                    assert count in allowed
            if not result.gpu_allocation:
                assert result.error_message in (NO_ALLOCATION, NO_COMMON_SHAPE)
                assert result.incompatible_shapes


def test_output_has_the_seed_fields_and_canonical_shape_names(catalog):
    result = plan(
        [
            catalog.model_input("meta-llama/Meta-Llama-3.1-70B-Instruct"),
            catalog.model_input("meta-llama/Llama-3.2-11B-Vision-Instruct"),
        ],
        catalog.shapes,
    )
    data = result.model_dump(mode="json")
    assert set(data) >= {"deployment_config", "gpu_allocation", "error_message"}
    assert "BM.GPU.A100-v2.8" in data["gpu_allocation"]
    assert "BM.GPU.A100-V2.8" not in json.dumps(data)
    entry = data["gpu_allocation"]["BM.GPU.H100.8"]
    assert entry["total_gpus_available"] == 8
    assert [(m["ocid"], m["gpu_count"]) for m in entry["models"]] == [
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", 4),
        ("meta-llama/Llama-3.2-11B-Vision-Instruct", 4),
    ]
    assert Plan.model_validate(data) == result  # round trip


def test_incompatible_shapes_say_which_model_and_which_limit(catalog):
    result = plan(
        [
            catalog.model_input("meta-llama/Meta-Llama-3.1-70B-Instruct"),
            catalog.model_input("meta-llama/Llama-3.2-11B-Vision-Instruct"),
            catalog.model_input("microsoft/phi-4"),
        ],
        catalog.shapes,
    )
    assert result.gpu_allocation == {}
    assert result.error_message == NO_ALLOCATION
    h100 = " ".join(result.incompatible_shapes["BM.GPU.H100.8"])
    assert "need 10 GPUs but the shape has 8" in h100
    assert "[5] ignored" in h100
    a10 = " ".join(result.incompatible_shapes["BM.GPU.A10.4"])
    assert "Meta-Llama-3.1-70B-Instruct' has no multi_model_deployment entry" in a10


def test_shapes_the_platform_does_not_offer_are_reported(catalog):
    offered = ShapeCatalog([catalog.shapes.get("BM.GPU.A10.4")])
    result = plan([catalog.model_input("google/gemma-2b"), catalog.model_input("microsoft/phi-2")], offered)
    assert list(result.gpu_allocation) == ["BM.GPU.A10.4"]
    assert result.incompatible_shapes["VM.GPU.A10.2"] == ["not offered by this platform (region/compartment)"]


def test_primary_flows_into_the_plan_and_unknown_primary_is_a_clear_error(catalog):
    models = [catalog.model_input(n) for n in ("google/gemma-2b", "meta-llama/Llama-3.2-1B", "microsoft/phi-2")]
    result = plan(models, catalog.shapes, primary_model_id="microsoft/phi-2")
    alloc = result.gpu_allocation["BM.GPU.A10.4"]
    assert alloc.primary_honoured is True
    assert [m.gpu_count for m in alloc.models] == [1, 1, 2]
    with pytest.raises(InvalidInput, match="primary_model_id: 'nope' is not one of the selected models"):
        plan(models, catalog.shapes, primary_model_id="nope")
    with pytest.raises(InvalidInput, match="model_ids: no models"):
        plan([], catalog.shapes)


def test_models_without_multi_model_entries_get_estimated_counts(catalog):
    custom = ModelInput(model_id="ocid1.custom", name="my-13b", parameter_count_b=13)
    result = plan([custom, catalog.model_input("meta-llama/Llama-3.2-1B")], catalog.shapes)
    assert result.estimated_models == ["ocid1.custom"]
    a10 = result.gpu_allocation["BM.GPU.A10.4"]
    mine = a10.models[0]
    assert mine.estimated and mine.estimated_need_in_gbs == 34.5
    assert mine.gpu_count == 2  # 13B in fp16 does not fit one 24 GB A10
    assert any("estimated" in w for w in result.warnings)
    too_big = ModelInput(model_id="big", name="big-400b", parameter_count_b=400)
    huge = plan([too_big], ShapeCatalog([catalog.shapes.get("BM.GPU.A10.4")]))
    assert "needs about 1002.0 GB" in huge.incompatible_shapes["BM.GPU.A10.4"][0]


def test_the_same_model_twice_is_planned_as_two_servers(catalog):
    gemma = catalog.model_input("google/gemma-2b")
    result = plan([gemma, gemma], catalog.shapes)
    alloc = result.gpu_allocation["VM.GPU.A10.2"]
    assert [(m.ocid, m.gpu_count) for m in alloc.models] == [("google/gemma-2b", 1), ("google/gemma-2b", 1)]


def test_config_order_does_not_change_the_plan(catalog):
    a = ModelInput(model_id="a", name="a", config=_config({"BM.GPU.H100.8": [1, 2, 4, 8]}))
    b = ModelInput(model_id="b", name="b", config=_config({"BM.GPU.H100.8": [8, 4, 2, 1]}))
    c = ModelInput(model_id="c", name="c", config=_config({"BM.GPU.H100.8": [4, 1, 8, 2]}))
    first = plan([a, b, c], catalog.shapes).gpu_allocation["BM.GPU.H100.8"]
    assert [m.gpu_count for m in first.models] == [4, 2, 2]
    b2 = ModelInput(model_id="b", name="b", config=_config({"BM.GPU.H100.8": [1, 2, 4, 8]}))
    assert plan([a, b2, c], catalog.shapes).gpu_allocation["BM.GPU.H100.8"] == first


def test_per_count_parameters_come_from_the_matching_entry(catalog):
    result = plan(
        [catalog.model_input("meta-llama/Llama-3.2-3B-Instruct"), catalog.model_input("google/gemma-2b")],
        catalog.shapes,
    )
    a10_4 = result.gpu_allocation["BM.GPU.A10.4"]
    llama = a10_4.models[0]
    assert llama.gpu_count == 2 and llama.parameters == {}  # the 2-GPU row has no extra flags
    a10_2 = result.gpu_allocation["VM.GPU.A10.2"].models[0]
    assert a10_2.parameters == {"VLLM_PARAMS": "--max-model-len 65536"}
