"""OCI's three wire forms of a model deployment, read into one Deployment (pure: no SDK, no emulator)."""

from __future__ import annotations

import json
from types import SimpleNamespace as Record

import pytest

from aqua_lab.platforms.oci.wire import flag_value, to_deployment

pytestmark = pytest.mark.oci


def _md(config: Record, state: str = "ACTIVE") -> Record:
    return Record(
        id="ocid1.md.1",
        display_name="d",
        lifecycle_state=state,
        model_deployment_url="https://md/ocid1.md.1",
        description=None,
        time_created="2026-01-01",
        lifecycle_details=None,
        freeform_tags={"OCI_AQUA": "active"},
        model_deployment_configuration_details=config,
    )


def _env(variables: dict) -> Record:
    return Record(environment_variables=variables)


def _group_config(params: str = "") -> Record:
    return Record(
        deployment_type="MODEL_GROUP",
        infrastructure_configuration_details=Record(instance_configuration=Record(instance_shape_name="VM.GPU.A10.2")),
        model_group_configuration_details=Record(model_group_id="ocid1.group.1"),
        environment_configuration_details=_env({"PARAMS": params}),
    )


def _single_config(variables: dict) -> Record:
    return Record(
        deployment_type="SINGLE_MODEL",
        model_configuration_details=Record(
            model_id="ocid1.model.solo", instance_configuration=Record(instance_shape_name="VM.GPU.A10.2")
        ),
        environment_configuration_details=_env(variables),
    )


def _member(model_id: str, key: str | None) -> Record:
    return Record(model_id=model_id, inference_key=key)


STACKED = Record(
    model_group_details=Record(type="STACKED", base_model_id="ocid1.model.base", custom_metadata_list=[]),
    member_model_entries=Record(
        member_model_details=[_member("ocid1.model.base", "base"), _member("ocid1.model.lora", "sql")]
    ),
)
HOMOGENEOUS = Record(
    model_group_details=Record(
        type="HOMOGENEOUS",
        base_model_id=None,
        custom_metadata_list=[
            Record(
                key="multi_model_metadata",
                value=json.dumps(
                    [
                        {"model_id": "ocid1.model.a", "model_name": "a", "gpu_count": 1},
                        {"model_id": "ocid1.model.b", "model_name": "b", "gpu_count": 1},
                    ]
                ),
            )
        ],
    ),
)
LEGACY_ENV = {
    "MULTI_MODEL_CONFIG": json.dumps(
        {
            "models": [
                {"params": "--served-model-name mistral --tensor-parallel-size 2", "model_path": "service/mistral"},
                {"params": "--seed 42", "model_path": "service/phi", "model_id": "ocid1.model.phi"},
            ]
        }
    )
}


@pytest.mark.parametrize(
    "config, group, kind, models",
    [
        (
            _group_config("--enable-lora --tensor-parallel-size 2"),
            STACKED,
            "STACKED",
            [("ocid1.model.base", "base", 2, ["sql"])],
        ),
        (_group_config(), HOMOGENEOUS, "MULTI", [("ocid1.model.a", "a", 1, []), ("ocid1.model.b", "b", 1, [])]),
        (_group_config(), None, "SINGLE", []),  # the group could not be read: no models, not a crash
        (
            _single_config(LEGACY_ENV),
            None,
            "MULTI",
            [("service/mistral", "mistral", 2, []), ("ocid1.model.phi", "service/phi", 1, [])],
        ),
        (
            _single_config({"PARAMS": "--served-model-name 'my model' --max-model-len 4096"}),
            None,
            "SINGLE",
            [("ocid1.model.solo", "my model", 2, [])],
        ),
        (_single_config({}), None, "SINGLE", [("ocid1.model.solo", "ocid1.model.solo", 2, [])]),
    ],
    ids=["stacked-group", "multi-group", "unreadable-group", "legacy-env", "single-named", "single-bare"],
)
def test_each_wire_form_reads_as_its_models(config, group, kind, models):
    deployment = to_deployment(_md(config), group, 100, lambda shape: 2)
    assert deployment.deployment_type == kind and deployment.instance_shape == "VM.GPU.A10.2"
    assert [
        (m.model_id, m.model_name, m.gpu_count, [w.model_name for w in m.fine_tune_weights]) for m in deployment.models
    ] == models


def test_an_unknown_lifecycle_state_needs_attention_and_tags_and_progress_pass_through():
    deployment = to_deployment(_md(_single_config({}), state="UNKNOWN_ENUM_VALUE"), None, 40, lambda shape: 1)
    assert deployment.state == "NEEDS_ATTENTION" and deployment.progress == 40
    assert deployment.tags == {"OCI_AQUA": "active"} and deployment.endpoint == "https://md/ocid1.md.1"


@pytest.mark.parametrize(
    "params, flag, value",
    [
        ("--served-model-name a --seed 42", "--served-model-name", "a"),
        ("--served-model-name=my--model", "--served-model-name", "my--model"),
        ("--tensor-parallel-size 4", "--tensor-parallel-size", "4"),
        ("--seed 42", "--served-model-name", None),
        ("--served-model-name 'unbalanced", "--served-model-name", None),
    ],
)
def test_flags_are_read_with_the_shlex_parser(params, flag, value):
    assert flag_value(params, flag) == value
