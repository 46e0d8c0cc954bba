"""Validation of a user's deployment request: every problem at once, each with its fix."""

from __future__ import annotations

import pytest

from aqua_lab.domain import DeploymentSpec, ModelInput
from aqua_lab.errors import InvalidInput
from aqua_lab.planning import validate_deployment

pytestmark = pytest.mark.planning


def _spec(models, shape="BM.GPU.A10.4", **kw):
    return DeploymentSpec(models=models, instance_shape=shape, display_name="t", **kw)


def _validate(catalog, spec):
    known = {m.model_id: catalog.model_input(m.model_id) for m in spec.models if catalog.find_model(m.model_id)}
    return validate_deployment(spec, known, catalog.shapes, catalog.suggest)


def _fields(exc: InvalidInput) -> dict[str, str]:
    return {p.field: str(p) for p in exc.problems}


def test_a_good_request_is_resolved_with_canonical_shape_and_merged_params(catalog):
    spec = _spec(
        [
            {"model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "gpu_count": 1, "model_name": "llama"},
            {"model_id": "microsoft/phi-4", "gpu_count": 2, "params": "--max-model-len 2048"},
            {"model_id": "google/gemma-2b", "gpu_count": 1},
        ],
        shape="bm.gpu.a10.4",
    )
    ok = _validate(catalog, spec)
    assert ok.spec.instance_shape == "BM.GPU.A10.4"
    assert [(m.model_name, m.gpu_count, m.params) for m in ok.models] == [
        ("llama", 1, "--max-model-len 4096"),
        ("microsoft/phi-4", 2, "--max-model-len 2048"),
        ("google/gemma-2b", 1, ""),
    ]
    assert ok.warnings == []


def test_every_problem_is_reported_with_its_field_and_fix(catalog):
    spec = _spec(
        [
            {"model_id": "microsoft/phi-4", "gpu_count": 3},
            {"model_id": "google/gemma-2b", "gpu_count": 1, "params": "--seed 3"},
            {"model_id": "google/gemma-2b", "gpu_count": 8},
            {"model_id": "nope/unknown-7b", "gpu_count": 1},
        ],
        primary_model_id="x",
    )
    with pytest.raises(InvalidInput) as err:
        _validate(catalog, spec)
    fields = _fields(err.value)
    assert "is not a power of two" in fields["models[0].gpu_count"] and "use 1, 2, 4" in fields["models[0].gpu_count"]
    assert "--seed is set by aqua_lab" in fields["models[1].params"]
    assert "already used by models[1]" in fields["models[2].model_name"]
    assert "distinct model_name" in fields["models[2].model_name"]
    assert "8 GPUs but BM.GPU.A10.4 has 4" in fields["models[2].gpu_count"]
    assert "unknown model 'nope/unknown-7b'" in fields["models[3].model_id"]
    assert "primary_model_id" in fields


def test_count_not_in_the_models_config_lists_the_allowed_ones(catalog):
    spec = _spec([{"model_id": "microsoft/phi-4", "gpu_count": 1}, {"model_id": "google/gemma-2b", "gpu_count": 1}])
    with pytest.raises(InvalidInput) as err:
        _validate(catalog, spec)
    assert (
        str(err.value)
        == "models[0].gpu_count: 'microsoft/phi-4' is configured for [2] GPU(s) on BM.GPU.A10.4, not 1 — use one of [2]"
    )


def test_unknown_shape_in_any_case_gets_a_suggestion(catalog):
    with pytest.raises(InvalidInput) as err:
        _validate(catalog, _spec([{"model_id": "google/gemma-2b", "gpu_count": 1}], shape="vm.gpu.a10.4"))
    assert "instance_shape: unknown shape 'vm.gpu.a10.4' — did you mean 'BM.GPU.A10.4'" in str(err.value)


def test_a_shape_the_model_does_not_support_names_the_shapes_it_does(catalog):
    spec = _spec(
        [{"model_id": "microsoft/phi-4", "gpu_count": 1}, {"model_id": "google/gemma-2b", "gpu_count": 1}],
        shape="VM.GPU.A10.2",
    )
    with pytest.raises(InvalidInput) as err:
        _validate(catalog, spec)
    assert "cannot run on VM.GPU.A10.2" in str(err.value) and "BM.GPU.H100.8" in str(err.value)


def test_too_many_gpus_suggests_bigger_shapes_and_under_use_is_a_warning(catalog):
    spec = _spec(
        [
            {"model_id": "microsoft/phi-4", "gpu_count": 2},
            {"model_id": "intfloat/e5-mistral-7b-instruct", "gpu_count": 2},
            {"model_id": "google/gemma-2b", "gpu_count": 1},
        ]
    )
    with pytest.raises(
        InvalidInput, match=r"need 5 GPUs but BM.GPU.A10.4 has 4 — lower some gpu_count or choose a shape"
    ):
        _validate(catalog, spec)
    under = _validate(
        catalog,
        _spec([{"model_id": "google/gemma-2b", "gpu_count": 1}, {"model_id": "microsoft/phi-2", "gpu_count": 1}]),
    )
    assert under.warnings == ["the models use 2 of the 4 GPUs of BM.GPU.A10.4; 2 stay idle"]


def test_the_same_model_twice_with_distinct_names_is_fine(catalog):
    spec = _spec(
        [
            {
                "model_id": "google/gemma-2b",
                "gpu_count": 1,
                "model_name": "gemma-a",
                "params": {"--max-model-len": "1024"},
            },
            {"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "gemma-b"},
        ],
        shape="VM.GPU.A10.2",
    )
    ok = _validate(catalog, spec)
    assert [(m.model_name, m.params) for m in ok.models] == [("gemma-a", "--max-model-len 1024"), ("gemma-b", "")]


def test_stacked_requests_need_one_base_and_unique_adapter_names(catalog):
    base = {"model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "gpu_count": 2, "model_name": "base"}
    with pytest.raises(InvalidInput, match="needs at least one LoRA adapter"):
        _validate(catalog, _spec([base], deployment_type="STACKED"))
    lora = [{"model_id": "ocid1.ft.a", "model_name": "base"}, {"model_id": "ocid1.ft.b", "model_name": "x" * 33}]
    with pytest.raises(InvalidInput) as err:
        _validate(catalog, _spec([{**base, "fine_tune_weights": lora}], deployment_type="STACKED"))
    fields = _fields(err.value)
    assert "already used by models[0]" in fields["models[0].fine_tune_weights[0].model_name"]
    # a name over OCI's documented 32 characters passes, as ADS's does (a warning says so: test_oci_small.py)
    assert "models[0].fine_tune_weights[1].model_name" not in fields


def test_unconfigured_model_is_allowed_by_estimate_with_a_warning_when_tight(catalog):
    mine = ModelInput(model_id="ocid1.mine", name="mine-13b", parameter_count_b=13)
    spec = _spec([{"model_id": "ocid1.mine", "gpu_count": 1}, {"model_id": "google/gemma-2b", "gpu_count": 1}])
    ok = validate_deployment(
        spec, {"ocid1.mine": mine, "google/gemma-2b": catalog.model_input("google/gemma-2b")}, catalog.shapes
    )
    assert ok.models[0].estimated
    assert any("estimated to need about 34.5 GB" in w for w in ok.warnings)


def test_unknown_fields_are_refused_by_the_spec_itself():
    with pytest.raises(Exception, match="gpu_cout"):
        DeploymentSpec.model_validate(
            {"models": [{"model_id": "a", "gpu_cout": 1}], "instance_shape": "x", "display_name": "d"}
        )
