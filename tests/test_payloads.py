"""Payload builders: MULTI_MODEL_CONFIG and OCI request bodies, checked against the oci SDK's own
wire schema (every key must be one the SDK knows, every discriminator must resolve)."""

from __future__ import annotations

import json
import re

import oci.data_science.models as sdk
import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.planning import payloads, validate_deployment

pytestmark = pytest.mark.planning

_LIST = re.compile(r"list\[(.+)\]")
_DICT = re.compile(r"dict\(str, (.+)\)")


def assert_wire(body, type_name: str, path: str = "$") -> None:
    """Walk ``body`` with the SDK model ``type_name``: unknown keys are a failure (the SDK would drop
    them silently), polymorphic types resolve through their discriminator."""
    if m := _LIST.fullmatch(type_name):
        assert isinstance(body, list), path
        for i, item in enumerate(body):
            assert_wire(item, m.group(1), f"{path}[{i}]")
        return
    if m := _DICT.fullmatch(type_name):
        assert isinstance(body, dict), path
        for k, v in body.items():
            assert_wire(v, m.group(1), f"{path}.{k}")
        return
    klass = getattr(sdk, type_name, None)
    if klass is None:  # str, int, float, bool, object
        return
    assert isinstance(body, dict), path
    if hasattr(klass, "get_subtype"):
        klass = getattr(sdk, klass.get_subtype(body))
    instance = klass()
    wire_to_attr = {wire: attr for attr, wire in instance.attribute_map.items()}
    for key, value in body.items():
        assert key in wire_to_attr, f"{path}.{key} is not a field of {klass.__name__}"
        assert_wire(value, instance.swagger_types[wire_to_attr[key]], f"{path}.{key}")


@pytest.fixture
def multi(catalog):
    spec = DeploymentSpec(
        models=[
            {"model_id": "mistralai/Mistral-7B-v0.1", "gpu_count": 1},
            {"model_id": "tiiuae/falcon-7b", "gpu_count": 1, "params": "--trust-remote-code"},
        ],
        instance_shape="VM.GPU.A10.2",
        display_name="mm",
        access_log_id="ocid1.log.a",
        predict_log_id="ocid1.log.p",
        log_group_id="ocid1.loggroup.g",
        env_var={"MODEL_DEPLOY_PREDICT_ENDPOINT": "/v1/chat/completions"},
        web_concurrency=2,
        freeform_tags={"team": "ds"},
    )
    known = {m.model_id: catalog.model_input(m.model_id) for m in spec.models}
    return validate_deployment(spec, known, catalog.shapes)


PATHS = {
    "mistralai/Mistral-7B-v0.1": "service_models/Mistral-7B-v0.1/78814a9/artifact",
    "tiiuae/falcon-7b": "service_models/falcon-7b/f779652/artifact",
}


def test_multi_model_config_matches_the_seeds_published_example(multi):
    config = payloads.multi_model_config(multi, PATHS)
    assert [(m["params"], m["model_path"]) for m in config["models"]] == [
        (
            "--served-model-name mistralai/Mistral-7B-v0.1 --seed 42 --tensor-parallel-size 1 --max-model-len 4096",
            "service_models/Mistral-7B-v0.1/78814a9/artifact",
        ),
        (
            "--served-model-name tiiuae/falcon-7b --seed 42 --tensor-parallel-size 1 --trust-remote-code",
            "service_models/falcon-7b/f779652/artifact",
        ),
    ]


def test_homogeneous_model_group_carries_multi_model_config_in_custom_metadata(multi):
    body = payloads.model_group_request(multi, PATHS, "ocid1.compartment.x", "ocid1.project.x")
    assert_wire(body, "CreateBaseModelGroupDetails")
    assert body["modelGroupDetails"]["type"] == "HOMOGENEOUS"
    meta = {m["key"]: m["value"] for m in body["modelGroupDetails"]["customMetadataList"]}
    assert json.loads(meta["MULTI_MODEL_CONFIG"]) == payloads.multi_model_config(multi, PATHS)
    assert meta["model_group_count"] == "2"
    assert body["memberModelEntries"]["memberModelDetails"] == [
        {"modelId": "mistralai/Mistral-7B-v0.1"},
        {"modelId": "tiiuae/falcon-7b"},
    ]
    assert body["freeformTags"] == {"aqua_multimodel": "true", "team": "ds"}


def test_model_group_deployment_request_has_aqua_tags_logs_and_env(multi):
    body = payloads.model_deployment_request(
        multi, "dsmc://odsc-vllm-serving:0.8.1.2", "ocid1.c", "ocid1.p", model_group_id="ocid1.modelgroup.g"
    )
    assert_wire(body, "CreateModelDeploymentDetails")
    config = body["modelDeploymentConfigurationDetails"]
    assert config["deploymentType"] == "MODEL_GROUP"
    assert config["modelGroupConfigurationDetails"] == {"modelGroupId": "ocid1.modelgroup.g"}
    infra = config["infrastructureConfigurationDetails"]
    assert infra["instanceConfiguration"] == {"instanceShapeName": "VM.GPU.A10.2"}
    assert infra["scalingPolicy"] == {"policyType": "FIXED_SIZE", "instanceCount": 1}
    env = config["environmentConfigurationDetails"]["environmentVariables"]
    assert env["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v1/chat/completions"  # user env wins
    assert env["MODEL_DEPLOY_ENABLE_STREAMING"] == "true" and env["WEB_CONCURRENCY"] == "2"
    assert body["freeformTags"] == {
        "OCI_AQUA": "active",
        "aqua_multimodel": "true",
        "aqua_model_id": "ocid1.modelgroup.g",
        "team": "ds",
    }
    assert body["categoryLogDetails"]["predict"] == {"logId": "ocid1.log.p", "logGroupId": "ocid1.loggroup.g"}
    with pytest.raises(ValueError, match="model_group_id"):
        payloads.model_deployment_request(multi, "img", "c", "p")


def test_stacked_group_and_deployment(catalog):
    spec = DeploymentSpec(
        models=[
            {
                "model_id": "meta-llama/Meta-Llama-3.1-8B-Instruct",
                "gpu_count": 2,
                "model_name": "base",
                "fine_tune_weights": [
                    {"model_id": "ocid1.ft.a", "model_name": "sql-lora-1"},
                    {"model_id": "ocid1.ft.b", "model_name": "sql-lora-2"},
                ],
            }
        ],
        instance_shape="BM.GPU.A10.4",
        display_name="stacked",
        deployment_type="STACKED",
    )
    v = validate_deployment(
        spec,
        {"meta-llama/Meta-Llama-3.1-8B-Instruct": catalog.model_input("meta-llama/Meta-Llama-3.1-8B-Instruct")},
        catalog.shapes,
    )
    group = payloads.model_group_request(v, {}, "c", "p")
    assert_wire(group, "CreateBaseModelGroupDetails")
    assert group["modelGroupDetails"]["type"] == "STACKED"
    assert group["modelGroupDetails"]["baseModelId"] == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    assert [m["inferenceKey"] for m in group["memberModelEntries"]["memberModelDetails"]] == [
        "sql-lora-1",
        "sql-lora-2",
        "base",
    ]
    body = payloads.model_deployment_request(v, "img", "c", "p", model_group_id="g")
    assert_wire(body, "CreateModelDeploymentDetails")
    env = body["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"]["environmentVariables"]
    assert (
        env["PARAMS"] == "--served-model-name base --seed 42 --tensor-parallel-size 2 --enable-lora --max-lora-rank 32"
    )
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "true"
    assert body["freeformTags"]["aqua_stacked_model"] == "true"


def test_single_model_deployment(catalog):
    spec = DeploymentSpec(
        models=[{"model_id": "google/gemma-2b", "gpu_count": 2}],
        instance_shape="VM.GPU.A10.2",
        display_name="one",
        deployment_type="SINGLE",
        description="d",
    )
    v = validate_deployment(spec, {"google/gemma-2b": catalog.model_input("google/gemma-2b")}, catalog.shapes)
    body = payloads.model_deployment_request(
        v, "img", "c", "p", model_artifact_prefix="service_models/gemma-2b/x/artifact"
    )
    assert_wire(body, "CreateModelDeploymentDetails")
    config = body["modelDeploymentConfigurationDetails"]
    assert config["deploymentType"] == "SINGLE_MODEL"
    assert config["modelConfigurationDetails"]["modelId"] == "google/gemma-2b"
    env = config["environmentConfigurationDetails"]["environmentVariables"]
    assert env["PARAMS"] == "--served-model-name google/gemma-2b --seed 42 --tensor-parallel-size 2"
    assert env["BASE_MODEL"] == "service_models/gemma-2b/x/artifact"
    assert body["description"] == "d"


def test_the_wire_checker_catches_misspelt_keys():
    with pytest.raises(AssertionError, match="displayname"):
        assert_wire({"displayname": "x"}, "CreateModelDeploymentDetails")
