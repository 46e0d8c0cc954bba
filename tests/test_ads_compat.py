"""What oracle-ads 2.16.1's own multi-model unit tests expect (tests/unitary/with_extras/aqua/ in
oracle/accelerated-data-science), fed to aqua_lab: each test is named after the ADS test it mirrors
and uses that test's inputs.  Where aqua_lab answers differently on purpose, the test says why."""

from __future__ import annotations

import json

import pytest

from aqua_lab.domain import DeploymentSpec, ModelInput, Shape
from aqua_lab.errors import InvalidInput
from aqua_lab.planning import params as P
from aqua_lab.planning import payloads, plan, validate_deployment
from aqua_lab.planning.shapes import MEMORY_UNKNOWN, ShapeCatalog

pytestmark = pytest.mark.planning

MODEL = "mistralai/Mistral-7B-v0.1"  # its config on VM.GPU.A10.2 at 1 GPU: --max-model-len 4096


def _validate(catalog, models, shape="VM.GPU.A10.2", **kw):
    spec = DeploymentSpec(models=models, instance_shape=shape, display_name="t", **kw)
    known = {m.model_id: catalog.model_input(m.model_id) for m in spec.models if catalog.find_model(m.model_id)}
    return validate_deployment(spec, known, catalog.shapes, catalog.suggest)


def _entry(env_var, params, model_id=MODEL, gpu_count=1):
    entry = {"model_id": model_id, "gpu_count": gpu_count, "env_var": dict(env_var)}
    if params is not None:
        entry["params"] = params
    return entry


def _second(model_id="tiiuae/falcon-7b"):
    return {"model_id": model_id, "gpu_count": 1}


# --------------------------------------------------------------------------------------------------
# 1. legacy env_var PARAMS  (test_common_entities.py::TestAquaMultiModelRef)


@pytest.mark.parametrize(
    ("env_var", "params", "expected_params"),
    [
        # ADS's four cases; aqua_lab's params then merge over the config's defaults flag by flag
        (
            {"PARAMS": "--max-model-len 8192 --enforce-eager"},
            {},
            "--max-model-len 8192 --enforce-eager",
        ),
        ({"PARAMS": "--a 1 --b 2"}, {"--a": "existing"}, "--max-model-len 4096 --a existing --b 2"),
        ({"PARAMS": "--x 1"}, None, "--max-model-len 4096 --x 1"),
        ({}, {"--existing": "value"}, "--max-model-len 4096 --existing value"),
    ],
)
def test_extract_params_from_env_var(catalog, env_var, params, expected_params):
    ok = _validate(catalog, [_entry(env_var, params), _second()])
    model = ok.models[0]
    assert model.params == expected_params
    assert "PARAMS" not in model.env_var
    assert f"--tensor-parallel-size 1 {expected_params}" in model.served_params
    if env_var:
        assert any("env_var PARAMS moved into params" in w for w in ok.warnings)


def test_extract_params_from_env_var_skips_override(catalog):
    entry = _entry({"PARAMS": "--max-model-len 8000 --new-flag yes"}, {"--max-model-len": "65536"})
    model = _validate(catalog, [entry, _second()]).models[0]
    assert model.params == "--max-model-len 65536 --new-flag yes"  # the user's own value wins


def test_extract_params_from_env_var_missing_env(catalog):
    model = _validate(catalog, [{"model_id": MODEL, "gpu_count": 1}, _second()]).models[0]
    assert model.env_var == {} and model.params == "--max-model-len 4096"  # no params: the config's


def test_model_validator_with_other_fields(catalog):
    entry = {"model_id": MODEL, "gpu_count": 1, "env_var": {"PARAMS": "--x abc", "OTHER": "kept"}}
    model = _validate(catalog, [entry, _second()]).models[0]
    assert model.params == "--max-model-len 4096 --x abc" and model.env_var == {"OTHER": "kept"}


def test_owned_flags_in_legacy_params_are_refused_naming_env_var(catalog):
    entry = _entry({"PARAMS": "--tensor-parallel-size 2 --max-model-len 8192"}, None)
    with pytest.raises(InvalidInput) as err:
        _validate(catalog, [entry, _second()])
    [problem] = err.value.problems
    assert problem.field == "models[0].env_var.PARAMS" and "set the model's gpu_count instead" in str(problem)


@pytest.mark.parametrize(
    ("input_param", "expected"),
    [
        ("--max-model-len 65536 --enable-streaming", [("--max-model-len", "65536"), ("--enable-streaming", None)]),
        ("", []),
        # ADS keeps "value with spaces" as one value; vLLM gets the same words either way
        ("--key1 value1 --key2 value with spaces", [("--key1", "value1"), ("--key2", ("value", "with", "spaces"))]),
    ],
)
def test_parse_params(input_param, expected):
    """test_common_entities.py::TestAquaMultiModelRef::test_parse_params"""
    flags = P.parse_params(input_param)
    assert [(f.name, f.value) for f in flags] == expected
    assert P.render(flags) == input_param


# --------------------------------------------------------------------------------------------------
# 2. multi-value flags  (test_utils.py::TestAquaUtils::test_parse_params: a string round trip)


@pytest.mark.parametrize(
    "params",
    [
        "--gpu-memory-utilization 0.98 --max-loras 2 --lora-modules speech=artifact/speech-lora "
        "vision=artifact/vision-lora --dtype auto --trust-remote-code",
        "--gpu-memory-utilization 0.98 --dtype auto --trust-remote-code",
        "--trust-remote-code --max-model-len 4096",
        "",
    ],
)
def test_parse_params_round_trip(params):
    flags = P.parse_params(params)
    assert P.render(flags) == params
    lora = [f for f in flags if f.key == "lora-modules"]
    if lora:
        assert lora[0].values == ("speech=artifact/speech-lora", "vision=artifact/vision-lora")
        assert lora[0].argv() == ["--lora-modules", "speech=artifact/speech-lora", "vision=artifact/vision-lora"]


@pytest.mark.parametrize(
    ("params", "rendered"),
    [
        ({"--lora-modules": "a=x b=y"}, "--lora-modules a=x b=y"),  # ADS's dict form: one string, two values
        ({"--lora-modules": ["a=x", "b=y"]}, "--lora-modules a=x b=y"),
        ({"--cuda-graph-sizes": "1 2 4"}, "--cuda-graph-sizes 1 2 4"),
        ({"--chat-template": "a b"}, "--chat-template 'a b'"),  # a one-value flag keeps its spaces
        ("--lora-modules a=x b=y --enforce-eager", "--lora-modules a=x b=y --enforce-eager"),
    ],
)
def test_multi_value_flags_are_separate_words(catalog, params, rendered):
    model = _validate(catalog, [_entry({}, params), _second()]).models[0]
    assert model.params.endswith(rendered)
    config = payloads.multi_model_config(_validate(catalog, [_entry({}, params), _second()]), {})
    assert config["models"][0]["params"].endswith(rendered)


# --------------------------------------------------------------------------------------------------
# 3. model_task  (test_model.py::test_create_multimodel; deployment.py's _extract_model_task)


@pytest.mark.parametrize(
    ("model_id", "model_task", "expected"),
    [
        ("intfloat/e5-mistral-7b-instruct", None, "text_embedding"),  # the catalog's task
        ("ibm-granite/granite-embedding-278m-multilingual", None, "text_embedding"),
        (MODEL, None, "text_generation"),
        (MODEL, "image-text-to-text", "image_text_to_text"),  # ADS's spelling rule: '-' → '_', lower case
        (MODEL, "Code_Synthesis", "code_synthesis"),
    ],
)
def test_create_multimodel_model_task(catalog, model_id, model_task, expected):
    entry = {"model_id": model_id, "gpu_count": 1}
    if model_task:
        entry["model_task"] = model_task
    ok = _validate(catalog, [entry, _second()])
    assert ok.models[0].model_task == expected
    assert payloads.multi_model_config(ok, {})["models"][0]["model_task"] == expected


def test_an_unknown_task_is_refused_naming_the_allowed_ones(catalog):
    with pytest.raises(InvalidInput) as err:
        _validate(catalog, [{"model_id": MODEL, "gpu_count": 1, "model_task": "fill_mask"}, _second()])
    [problem] = err.value.problems
    assert problem.field == "models[0].model_task" and "'fill_mask'" in problem.message
    assert "text_embedding" in problem.fix and "text_generation" in problem.fix


def test_a_model_without_a_catalog_task_is_assumed_text_generation_with_a_warning(catalog):
    own = ModelInput(model_id="my-model", name="my-model", parameter_count_b=1)
    spec = DeploymentSpec(
        models=[{"model_id": "my-model", "gpu_count": 1}], instance_shape="VM.GPU.A10.2", display_name="t"
    )
    ok = validate_deployment(spec, {"my-model": own}, catalog.shapes)
    assert ok.models[0].model_task == "text_generation"
    assert any("'my-model' has no task in the catalog" in w for w in ok.warnings)


# --------------------------------------------------------------------------------------------------
# 4. multi_model_metadata  (test_deployment.py::test_get_multi_model_deployment and the
#    multi_model_metadata ADS writes in _build_model_group_configs: [ref.model_dump() for ref in models])

ADS_REF_FIELDS = {
    "model_id",
    "model_name",
    "gpu_count",
    "model_task",
    "env_var",
    "params",
    "artifact_location",
    "fine_tune_weights",
}

# TestDataset.multi_model_deployment_model_attributes, as ADS's get() reads them back
ADS_MULTI_MODEL_METADATA = [
    {
        "env_var": {"--test_key_one": "test_value_one"},
        "params": None,
        "gpu_count": 1,
        "model_id": "ocid1.compartment.oc1..<OCID>",
        "model_name": "model_one",
        "model_task": "text_embedding",
        "artifact_location": "artifact_location_one",
        "fine_tune_weights": None,
    },
    {
        "env_var": {"--test_key_two": "test_value_two"},
        "params": None,
        "gpu_count": 1,
        "model_id": "ocid1.compartment.oc1..<OCID>",
        "model_name": "model_two",
        "model_task": "image_text_to_text",
        "artifact_location": "artifact_location_two",
        "fine_tune_weights": None,
    },
    {
        "env_var": {"--test_key_three": "test_value_three"},
        "params": None,
        "gpu_count": 1,
        "model_id": "ocid1.compartment.oc1..<OCID>",
        "model_name": "model_three",
        "model_task": "code_synthesis",
        "artifact_location": "artifact_location_three",
        "fine_tune_weights": [
            {
                "model_id": "ocid1.datasciencemodel.oc1..<OCID>",
                "model_name": "ft_model",
                "model_path": "oci://test_bucket@test_namespace/models/ft-models/meta-llama-3b/"
                "ocid1.datasciencejob.oc1.iad.<ocid>",
            }
        ],
    },
]


def test_get_multi_model_deployment_reads_an_ads_made_group():
    models = payloads.deployed_models(ADS_MULTI_MODEL_METADATA)
    assert [(m.model_name, m.gpu_count, m.model_task, m.artifact_location) for m in models] == [
        ("model_one", 1, "text_embedding", "artifact_location_one"),
        ("model_two", 1, "image_text_to_text", "artifact_location_two"),
        ("model_three", 1, "code_synthesis", "artifact_location_three"),
    ]
    assert models[0].env_var == {"--test_key_one": "test_value_one"} and models[0].params is None
    assert [(w.model_id, w.model_name) for w in models[2].fine_tune_weights] == [
        ("ocid1.datasciencemodel.oc1..<OCID>", "ft_model")
    ]


def test_ads_refs_with_missing_or_odd_fields_are_still_read():
    models = payloads.deployed_models(
        [
            {"model_id": "m1"},  # gpu_count and model_name are Optional in AquaMultiModelRef
            {"model_id": "m2", "gpu_count": 2, "params": {"--max-model-len": "4096", "--enforce-eager": ""}},
            {"model_id": "m3", "params": {"--lora-modules": "'unbalanced"}},  # unreadable: shown without params
        ]
    )
    assert [(m.model_name, m.gpu_count, m.params) for m in models] == [
        ("m1", 1, None),
        ("m2", 2, "--max-model-len 4096 --enforce-eager"),
        ("m3", 1, None),
    ]


def test_group_metadata_stores_every_field_of_ads_multi_model_ref(catalog):
    base = "meta-llama/Meta-Llama-3.1-8B-Instruct"
    ok = _validate(
        catalog,
        [
            {
                "model_id": base,
                "gpu_count": 2,
                "model_name": "llama",
                "env_var": {"PARAMS": "--enforce-eager", "HF_HOME": "/tmp"},
                "fine_tune_weights": [{"model_id": "ft-1", "model_name": "sql"}],
            },
            {"model_id": "intfloat/e5-mistral-7b-instruct", "gpu_count": 2, "params": {"--lora-modules": "a=x b=y"}},
        ],
        shape="BM.GPU.A10.4",
    )
    locations = {base: "oci://bucket@ns/llama", "intfloat/e5-mistral-7b-instruct": "oci://bucket@ns/e5"}
    body = payloads.model_group_request(ok, {}, "c", "p", locations)
    meta = {m["key"]: m["value"] for m in body["modelGroupDetails"]["customMetadataList"]}
    stored = json.loads(meta["multi_model_metadata"])
    assert all(set(ref) == ADS_REF_FIELDS for ref in stored)
    llama, e5 = stored
    assert llama["model_task"] == "text_generation" and e5["model_task"] == "text_embedding"
    assert llama["env_var"] == {"HF_HOME": "/tmp"}
    assert llama["params"] == {"--enforce-eager": ""}  # ADS's dict form
    assert e5["params"]["--lora-modules"] == "a=x b=y"
    assert llama["artifact_location"] == "oci://bucket@ns/llama"
    assert llama["fine_tune_weights"] == [{"model_id": "ft-1", "model_name": "sql", "model_path": "ft-1"}]
    assert e5["fine_tune_weights"] is None
    # and it reads back as it went in
    again = payloads.deployed_models(stored)
    assert [(m.model_name, m.gpu_count, m.model_task, m.params) for m in again] == [
        ("llama", 2, "text_generation", "--enforce-eager"),
        ("intfloat/e5-mistral-7b-instruct", 2, "text_embedding", "--lora-modules a=x b=y"),
    ]
    assert [w.model_name for w in again[0].fine_tune_weights] == ["sql"]


# --------------------------------------------------------------------------------------------------
# 5. unknown GPU shapes  (test_common_entities.py::TestComputeShapeSummary::test_set_gpu_specs)


@pytest.mark.parametrize(
    ("name", "series", "expected_count", "note"),
    [
        ("VM.GPU.UNKNOWN.4", "NVIDIA_GPU", 4, MEMORY_UNKNOWN),  # ADS: count from the name, no memory
        ("BM.GPU.NEWCHIP.8", "NVIDIA_GPU", 8, MEMORY_UNKNOWN),
        ("VM.GPU.UNKNOWN", "NVIDIA_GPU", 0, "GPU count unknown: not in the bundled GPU index"),
        ("VM.Standard.E4.Flex", "INTEL_SKYLAKE", 0, None),  # not a GPU shape: nothing to read
    ],
)
def test_set_gpu_specs(catalog, name, series, expected_count, note):
    merged = catalog.shapes.merged_with([Shape(name=name, core_count=8, memory_in_gbs=64, shape_series=series)])
    shape = merged.get(name)
    assert shape.gpu_count == expected_count
    assert shape.per_gpu_memory_in_gbs is None
    assert shape.notes == ([note] if note else [])
    known = catalog.shapes.merged_with([Shape(name="bm.gpu.a10.4", shape_series="NVIDIA_GPU")]).get("BM.GPU.A10.4")
    assert known.gpu_count == 4 and known.per_gpu_memory_in_gbs == 24 and known.notes == []


def _configured(model_id, shape, counts):
    config = {
        "shape": [shape],
        "configuration": {
            shape: {"multi_model_deployment": [{"gpu_count": c, "parameters": {"VLLM_PARAMS": ""}} for c in counts]}
        },
    }
    from aqua_lab.domain import DeploymentConfig

    return ModelInput(model_id=model_id, name=model_id, config=DeploymentConfig.model_validate(config))


def test_two_models_configured_for_an_unknown_offered_shape_get_a_plan(catalog):
    offered = catalog.shapes.merged_with(
        [
            Shape(name="VM.GPU.UNKNOWN.4", shape_series="NVIDIA_GPU"),
            Shape(name="VM.GPU.NONUMBER", shape_series="NVIDIA_GPU"),
        ]
    )
    a = _configured("a", "VM.GPU.UNKNOWN.4", [1, 2])
    b = _configured("b", "VM.GPU.UNKNOWN.4", [2])
    result = plan([a, b], offered)
    assert result.error_message is None
    shape_plan = result.gpu_allocation["VM.GPU.UNKNOWN.4"]
    assert [m.gpu_count for m in shape_plan.models] == [2, 2]
    assert MEMORY_UNKNOWN in shape_plan.notes
    assert result.incompatible_shapes["VM.GPU.NONUMBER"] == ["GPU count unknown: not in the bundled GPU index"]
    spec = DeploymentSpec(
        models=[{"model_id": "a", "gpu_count": 2}, {"model_id": "b", "gpu_count": 2}],
        instance_shape="vm.gpu.unknown.4",
        display_name="t",
    )
    assert validate_deployment(spec, {"a": a, "b": b}, offered).shape.name == "VM.GPU.UNKNOWN.4"


# --------------------------------------------------------------------------------------------------
# 8. smaller ones


def test_validate_warns_when_an_unknown_size_cannot_be_checked(catalog):
    own = ModelInput(model_id="my-model", name="my-model")  # no config, no size in its name
    spec = DeploymentSpec(
        models=[{"model_id": "my-model", "gpu_count": 1}, _second()], instance_shape="VM.GPU.A10.2", display_name="t"
    )
    known = {"my-model": own, "tiiuae/falcon-7b": catalog.model_input("tiiuae/falcon-7b")}
    ok = validate_deployment(spec, known, catalog.shapes)
    assert ok.models[0].estimated
    [warning] = [w for w in ok.warnings if "my-model" in w and "does not know its size" in w]
    assert "make sure its weights plus KV cache fit in 1 × 24 GB" in warning
    # a known size on a shape whose memory nothing tells: the same warning, saying what is unknown
    sized = ModelInput(model_id="my-7b", name="my-7b", parameter_count_b=7)
    offered = catalog.shapes.merged_with([Shape(name="VM.GPU.UNKNOWN.2", shape_series="NVIDIA_GPU")])
    spec = DeploymentSpec(
        models=[{"model_id": "my-7b", "gpu_count": 2}], instance_shape="VM.GPU.UNKNOWN.2", display_name="t"
    )
    [warning, _] = validate_deployment(spec, {"my-7b": sized}, offered).warnings
    assert "the GPU memory of VM.GPU.UNKNOWN.2 is unknown" in warning and "fit in 2 GPU(s)" in warning


def test_get_deployment_config_plan_parameters_are_what_is_sent():
    """Configs may carry flags aqua_lab owns (ADS's own fixtures: "--seed 42"); the plan shows the
    flags that validate keeps, and says which were dropped."""
    from aqua_lab.domain import DeploymentConfig, GpuSpec

    config = DeploymentConfig.model_validate(
        {
            "shape": ["VM.GPU.A10.2"],
            "configuration": {
                "VM.GPU.A10.2": {
                    "multi_model_deployment": [
                        {"gpu_count": 1, "parameters": {"VLLM_PARAMS": "--max-model-len 4096 --seed 42"}}
                    ]
                }
            },
        }
    )
    shapes = ShapeCatalog([Shape(name="VM.GPU.A10.2", gpu_specs=GpuSpec(gpu_count=2, gpu_memory_in_gbs=48))])
    models = [ModelInput(model_id=i, name=i, config=config) for i in ("a", "b")]
    shape_plan = plan(models, shapes).gpu_allocation["VM.GPU.A10.2"]
    assert [m.parameters for m in shape_plan.models] == [{"VLLM_PARAMS": "--max-model-len 4096"}] * 2
    assert any("--seed dropped" in n for n in shape_plan.notes)
    spec = DeploymentSpec(
        models=[{"model_id": "a", "gpu_count": 1}, {"model_id": "b", "gpu_count": 1}],
        instance_shape="VM.GPU.A10.2",
        display_name="t",
    )
    ok = validate_deployment(spec, {m.model_id: m for m in models}, shapes)
    assert ok.models[0].params == "--max-model-len 4096"
    assert ok.models[0].served_params == "--served-model-name a --seed 42 --tensor-parallel-size 1 --max-model-len 4096"


def test_several_values_for_a_one_value_flag_warn_for_vllm_and_are_refused_for_llama_cpp(catalog):
    from aqua_lab.platforms.local.llama_flags import engine_args

    ok = _validate(catalog, [_entry({}, "--max-model-len 4096 8192"), _second()])
    assert any("--max-model-len has 2 values (4096 8192)" in w for w in ok.warnings)
    with pytest.raises(InvalidInput, match="--ctx-size takes one value, got 2"):
        engine_args(P.parse_params("--ctx-size 512 1024"))
