"""The OCI platform through the real oci SDK, against the local emulator (signatures checked)."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.domain import ChatRequest, DeploymentSpec  # noqa: E402
from aqua_lab.emulator import Emulator, new_api_key, seed_from_bundled, write_api_key_config  # noqa: E402
from aqua_lab.errors import Conflict, InvalidInput, UpstreamError  # noqa: E402
from aqua_lab.platforms.oci import AuthError, OciPlatform, Settings, resolve_auth  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402
from tests.helpers.cli import run_cli  # noqa: E402

pytestmark = pytest.mark.oci

COMPARTMENT = "ocid1.compartment.oc1..aqua"
SERVICE = "ocid1.compartment.oc1..service"
PROJECT = "ocid1.datascienceproject.oc1..aqua"


@pytest.fixture(scope="module")
def emulator():
    emulator = Emulator(polls_to_active=3).start()
    emulator.ids = seed_from_bundled(emulator, SERVICE)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def config_file(emulator, tmp_path_factory):
    return write_api_key_config(emulator, tmp_path_factory.mktemp("oci"))


def _platform(emulator, auth, **settings):
    defaults = {
        "compartment_id": COMPARTMENT,
        "project_id": PROJECT,
        "service_compartment_id": SERVICE,
        "endpoint": emulator.url,
        "retry_base_s": 0.01,
    }
    return OciPlatform(auth, Settings(**{**defaults, **settings}))


@pytest.fixture(scope="module")
def service(emulator, config_file):
    return AquaLabService(_platform(emulator, resolve_auth(config_file=config_file)))


def _requests(emulator, fragment):
    return sum(1 for _, path in emulator.state.requests if fragment in path)


# --------------------------------------------------------------------------------------------------
# auth


def test_api_key_auth_is_detected_from_the_config_file(config_file, tmp_path):
    auth = resolve_auth(env={"OCI_CONFIG_LOCATION": str(config_file)})
    assert auth.mode == "api_key" and auth.region == "us-ashburn-1"
    with pytest.raises(AuthError, match=f"no config file at {tmp_path}/none"):
        resolve_auth(env={"OCI_CONFIG_LOCATION": str(tmp_path / "none")})
    with pytest.raises(AuthError, match=r"profile \[NOPE\] is not in"):
        resolve_auth(config_file=config_file, profile="NOPE")


def test_a_key_the_service_does_not_know_is_a_clear_401(emulator, tmp_path):
    stranger = write_api_key_config(Emulator(), tmp_path)  # registered with another emulator only
    platform = _platform(emulator, resolve_auth(config_file=stranger))
    with pytest.raises(UpstreamError) as err:
        platform.list_shapes()
    assert err.value.status == 401 and err.value.request_id
    assert "NotAuthenticated" in str(err.value) and "PRIVATE" not in str(err.value)


def test_session_token_auth_and_its_expiry(emulator, tmp_path):
    key, pem, fingerprint = new_api_key()
    (tmp_path / "key.pem").write_text(pem)
    token = emulator.mint_token(key.public_key())
    (tmp_path / "token").write_text(token)
    (tmp_path / "config").write_text(
        f"[SESSION]\nfingerprint={fingerprint}\ntenancy=ocid1.tenancy.oc1..t\nregion=us-phoenix-1\n"
        f"key_file={tmp_path / 'key.pem'}\nsecurity_token_file={tmp_path / 'token'}\n"
    )
    auth = resolve_auth(config_file=tmp_path / "config", profile="SESSION")
    assert auth.mode == "security_token" and auth.region == "us-phoenix-1"
    assert _platform(emulator, auth).list_shapes()
    (tmp_path / "token").write_text(emulator.mint_token(key.public_key(), ttl_s=-60))
    with pytest.raises(AuthError, match="session token has expired; run `oci session refresh --profile SESSION`"):
        resolve_auth(config_file=tmp_path / "config", profile="SESSION")


def test_resource_principal_auth_as_in_a_notebook_session(emulator, tmp_path, monkeypatch):
    key, pem, _ = new_api_key()
    (tmp_path / "rp.pem").write_text(pem)
    rpst = emulator.mint_token(
        key.public_key(), res_tenant="ocid1.tenancy.oc1..t", res_compartment=COMPARTMENT, ttype="res_principal"
    )
    monkeypatch.setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2")
    monkeypatch.setenv("OCI_RESOURCE_PRINCIPAL_RPST", rpst)
    monkeypatch.setenv("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", str(tmp_path / "rp.pem"))
    monkeypatch.setenv("OCI_RESOURCE_PRINCIPAL_REGION", "eu-frankfurt-1")
    auth = resolve_auth(env=dict(os.environ))
    assert auth.mode == "resource_principal" and auth.region == "eu-frankfurt-1"
    assert auth.compartment_id == COMPARTMENT
    platform = OciPlatform.from_environment(auth, env={"AQUA_LAB_OCI_ENDPOINT": emulator.url})
    assert platform.settings.compartment_id == COMPARTMENT  # the session's own compartment by default
    assert platform.list_shapes()


# --------------------------------------------------------------------------------------------------
# catalog


def test_shapes_carry_gpu_specs_and_canonical_names(service):
    shapes = {s.name: s for s in service.shapes()}
    assert shapes["BM.GPU.A100-v2.8"].gpu_count == 8
    assert shapes["VM.GPU.A10.2"].per_gpu_memory_in_gbs == 24
    assert shapes["VM.Standard.E4.Flex"].gpu_count == 0


def test_models_and_configs_from_metadata_object_storage_and_fine_tune_base(emulator, service):
    names = {m.name for m in service.models()}
    assert "meta-llama/Meta-Llama-3.1-8B-Instruct" in names
    config = service.platform.get_model_config("google/gemma-2b")
    assert [e.gpu_count for e in config.configuration["VM.GPU.A10.2"].multi_model_deployment] == [1]
    # a registered model whose config lives next to its artifact in Object Storage
    emulator.put_object(
        "mine",
        "models/my-13b/config/deployment_config.json",
        json.dumps(
            {
                "shape": ["BM.GPU.A10.4"],
                "configuration": {"bm.gpu.a10.4": {"multi_model_deployment": [{"gpu_count": 2}]}},
            }
        ).encode(),
    )
    mine = emulator.add_model(
        "my-13b",
        COMPARTMENT,
        tags={"OCI_AQUA": "active"},
        custom={"artifact_location": f"oci://mine@{emulator.namespace}/models/my-13b/artifact"},
    )
    assert (
        service.platform.get_model_config(mine).configuration["BM.GPU.A10.4"].multi_model_deployment[0].gpu_count == 2
    )
    # a fine-tuned model without a config of its own uses its base model's
    ft = emulator.add_model(
        "gemma-ft",
        COMPARTMENT,
        tags={"OCI_AQUA": "active", "aqua_fine_tuned_model": "x"},
        custom={"fine_tune_source": emulator.ids["google/gemma-2b"]},
    )
    assert "VM.GPU.A10.2" in service.platform.get_model_config(ft).configuration
    service.model_input(mine)
    before = _requests(emulator, f"/models/{mine}")
    service.model_input(mine)
    assert _requests(emulator, f"/models/{mine}") == before  # TTL cache


def test_a_changed_deployment_config_on_oci_is_seen_after_the_ttl(emulator, config_file):
    service = AquaLabService(_platform(emulator, resolve_auth(config_file=config_file)), input_ttl_s=0.3)
    name = "models/ttl-7b/config/deployment_config.json"

    def publish(shape: str, gpus: int) -> None:
        config = {"shape": [shape], "configuration": {shape: {"multi_model_deployment": [{"gpu_count": gpus}]}}}
        emulator.put_object("mine", name, json.dumps(config).encode())

    publish("VM.GPU.A10.2", 2)
    model = emulator.add_model(
        "ttl-7b",
        COMPARTMENT,
        tags={"OCI_AQUA": "active"},
        custom={"artifact_location": f"oci://mine@{emulator.namespace}/models/ttl-7b/artifact"},
    )
    assert list(service.plan([model]).gpu_allocation) == ["VM.GPU.A10.2"]
    publish("BM.GPU.A10.4", 4)  # someone edits the file in Object Storage
    assert list(service.plan([model]).gpu_allocation) == ["VM.GPU.A10.2"]  # within the TTL: the cached one
    time.sleep(0.35)
    assert list(service.plan([model]).gpu_allocation) == ["BM.GPU.A10.4"]
    assert service.plan([model]).gpu_allocation["BM.GPU.A10.4"].models[0].gpu_count == 4


def test_configs_of_many_models_are_fetched_concurrently(emulator, config_file):
    platform = _platform(emulator, resolve_auth(config_file=config_file))
    ids = list(emulator.ids.values())[:12]
    emulator.latency_s = 0.1  # long enough for concurrent calls to overlap at the server
    emulator.peak_in_flight = 0
    try:
        service = AquaLabService(platform)
        service.model_inputs(ids)
    finally:
        emulator.latency_s = 0
    assert emulator.peak_in_flight >= 12  # every model's record and config were in flight together
    before = len(emulator.state.requests)
    service.plan(ids[:3])
    assert [p for _, p in emulator.state.requests[before:]] == ["/20190101/modelDeploymentShapes"]  # cache


def test_architectures_come_from_the_artifacts_config_json(emulator, service):
    platform = service.platform
    llama = platform.get_model_architecture("meta-llama/Meta-Llama-3.1-8B-Instruct")
    assert (llama.layers, llama.kv_heads, llama.head_dim, llama.max_position_embeddings) == (32, 8, 128, 131072)
    assert llama.source.startswith("oci://service-managed-models@") and llama.source.endswith("artifact/config.json")
    emulator.put_object(
        "mine",
        "models/my-7b/artifact/config.json",
        json.dumps(
            {"num_hidden_layers": 28, "hidden_size": 3584, "num_attention_heads": 28, "num_key_value_heads": 4}
        ).encode(),
    )
    mine = emulator.add_model(
        "my-7b",
        COMPARTMENT,
        tags={"OCI_AQUA": "active"},
        custom={"artifact_location": f"oci://mine@{emulator.namespace}/models/my-7b/artifact"},
    )
    arch = platform.get_model_architecture(mine)
    assert (arch.layers, arch.kv_heads, arch.head_dim) == (28, 4, 128)
    before = _requests(emulator, "models/my-7b/artifact/config.json")
    platform.get_model_architecture(mine)
    assert _requests(emulator, "models/my-7b/artifact/config.json") == before  # cached like the configs
    # a config.json has no parameter count: the bundled row gives a service model's, a name the rest
    assert service.model_input("meta-llama/Meta-Llama-3.1-8B-Instruct").architecture.parameters_b == 8.03
    planned = service.model_input(mine).architecture
    assert planned.parameters_b == 7 and "≈7B read from the model's name" in planned.source
    nameless = emulator.add_model(
        "custom-model",
        COMPARTMENT,
        tags={"OCI_AQUA": "active"},
        custom={"artifact_location": f"oci://mine@{emulator.namespace}/models/my-7b/artifact"},
    )
    plan = service.plan([nameless])  # nothing says its size: the plan says so instead of guessing
    assert any("parameters_b or weight_bytes unknown" in w for w in plan.warnings)
    no_artifact = emulator.add_model("bare", COMPARTMENT, tags={"OCI_AQUA": "active"})
    assert platform.get_model_architecture(no_artifact) is None


# --------------------------------------------------------------------------------------------------
# deployments end to end


def _chat(service, deployment_id, model, stream=True, **kw):
    async def run():
        request = ChatRequest(model=model, messages=[{"role": "user", "content": "hello"}], stream=stream, **kw)
        if not stream:
            return await service.chat(deployment_id, request)
        return [c async for c in service.chat_stream(deployment_id, request)]

    return asyncio.run(run())


def test_multi_model_deployment_end_to_end(emulator, service):
    plan = service.plan(["google/gemma-2b", "microsoft/phi-2"], primary_model_id="microsoft/phi-2")
    assert [m.gpu_count for m in plan.gpu_allocation["BM.GPU.A10.4"].models] == [1, 2]  # gemma allows only 1
    spec = DeploymentSpec(
        models=[
            {"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "gemma"},
            {"model_id": "microsoft/phi-2", "gpu_count": 1, "model_name": "phi", "params": "--max-model-len 2048"},
        ],
        instance_shape="vm.gpu.a10.2",
        display_name="two on A10.2",
        log_group_id="ocid1.loggroup.oc1..g",
        access_log_id="ocid1.log.oc1..a",
        predict_log_id="ocid1.log.oc1..p",
        web_concurrency=2,
        env_var={"MODEL_DEPLOY_PREDICT_ENDPOINT": "/v1/chat/completions"},
        description="from aqua_lab",
    )
    created = service.create_deployment(spec)
    assert created.state == "CREATING" and created.instance_shape == "VM.GPU.A10.2"
    seen = []
    done = service.wait(created.id, lambda d: seen.append(d.progress), timeout=10, interval=0.01)
    assert done.state == "ACTIVE" and seen[-1] == 100 and any(0 < p < 100 for p in seen)
    assert [(m.model_name, m.gpu_count) for m in done.models] == [("gemma", 1), ("phi", 1)]
    assert {(s.model_name, s.state) for s in done.model_states} == {("gemma", "ACTIVE"), ("phi", "ACTIVE")}
    group = next(iter(emulator.state.groups.values()))
    meta = {m["key"]: m["value"] for m in group["modelGroupDetails"]["customMetadataList"]}
    params = [m["params"] for m in json.loads(meta["MULTI_MODEL_CONFIG"])["models"]]
    assert params == [
        "--served-model-name gemma --seed 42 --tensor-parallel-size 1",
        "--served-model-name phi --seed 42 --tensor-parallel-size 1 --max-model-len 2048",
    ]
    sent = emulator.state.deployments[created.id]
    assert sent["categoryLogDetails"]["predict"]["logId"] == "ocid1.log.oc1..p"
    assert sent["freeformTags"]["aqua_multimodel"] == "true"

    chunks = _chat(service, created.id, "phi", max_tokens=6)
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "phi answers: hello"
    whole = _chat(service, created.id, "gemma", stream=False)
    assert whole["choices"][0]["message"]["content"].startswith("gemma answers")
    with pytest.raises(InvalidInput, match="use one of \\['gemma', 'phi'\\]"):
        _chat(service, created.id, "mistral")
    assert created.id in [d.id for d in service.list_deployments()]

    assert service.deactivate(created.id).state == "UPDATING"
    assert service.wait(created.id, timeout=10, until=("INACTIVE",), interval=0.01).state == "INACTIVE"
    with pytest.raises(Conflict, match="INACTIVE"):
        _chat(service, created.id, "phi")
    with pytest.raises(Conflict):
        service.deactivate(created.id)
    assert service.delete(created.id).state == "DELETING"
    assert service.wait(created.id, timeout=10, until=("DELETED",), interval=0.01).state == "DELETED"


def test_stacked_deployment_and_live_update(emulator, service):
    base = emulator.ids["meta-llama/Meta-Llama-3.1-8B-Instruct"]
    ft = [
        emulator.add_model(
            f"sql-lora-{i}",
            COMPARTMENT,
            tags={"OCI_AQUA": "active", "aqua_fine_tuned_model": f"{base}#Meta-Llama-3.1-8B-Instruct"},
            custom={"artifact_location": f"oci://ft@{emulator.namespace}/ft/{i}", "fine_tune_source": base},
        )
        for i in (1, 2)
    ]
    spec = DeploymentSpec(
        models=[
            {
                "model_id": base,
                "gpu_count": 2,
                "model_name": "base",
                "fine_tune_weights": [{"model_id": ft[0], "model_name": "sql-lora-1"}],
            }
        ],
        instance_shape="BM.GPU.A10.4",
        display_name="stacked",
        deployment_type="STACKED",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    assert deployment.state == "ACTIVE" and deployment.deployment_type == "STACKED"
    assert deployment.served_names() == ["base", "sql-lora-1"]
    env = emulator.state.deployments[deployment.id]["modelDeploymentConfigurationDetails"][
        "environmentConfigurationDetails"
    ]["environmentVariables"]
    assert "--enable-lora" in env["PARAMS"] and env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "true"
    assert _chat(service, deployment.id, "sql-lora-1", max_tokens=2)

    raw = spec.model_dump()
    raw["models"][0]["fine_tune_weights"].append({"model_id": ft[1], "model_name": "sql-lora-2", "model_path": None})
    update = DeploymentSpec.model_validate(raw)
    updated = service.platform.update_models(deployment.id, service.validate(update))
    assert updated.state == "ACTIVE"  # LIVE: no downtime while the work request runs
    assert updated.progress < 100  # the update's own work request, not the finished create's
    assert service.wait(deployment.id, timeout=10, interval=0.01).state == "ACTIVE"
    service.clear_cache()
    service._chat_deployments.clear()
    assert service.get_deployment(deployment.id).served_names() == ["base", "sql-lora-1", "sql-lora-2"]
    assert _chat(service, deployment.id, "sql-lora-2", max_tokens=2)


def test_legacy_deployments_with_multi_model_config_in_env_are_understood(emulator, service):
    deployment_id = "ocid1.datasciencemodeldeployment.oc1.iad.legacy"
    mmc = {
        "models": [
            {
                "params": "--served-model-name mistralai/Mistral-7B-v0.1 --seed 42 --tensor-parallel-size 1",
                "model_path": "service_models/Mistral-7B-v0.1/78814a9/artifact",
            },
            {
                "params": "--served-model-name tiiuae/falcon-7b --seed 42 --tensor-parallel-size 1",
                "model_path": "service_models/falcon-7b/f779652/artifact",
            },
        ]
    }
    model = emulator.ids["mistralai/Mistral-7B-v0.1"]
    emulator.state.deployments[deployment_id] = {
        "id": deployment_id,
        "compartmentId": COMPARTMENT,
        "projectId": PROJECT,
        "displayName": "legacy",
        "lifecycleState": "ACTIVE",
        "timeCreated": "2025-03-10T19:09:40Z",
        "createdBy": "u",
        "modelDeploymentUrl": f"{emulator.url}/{deployment_id}",
        "freeformTags": {"OCI_AQUA": "active", "aqua_multimodel": "true"},
        "definedTags": {},
        "modelDeploymentConfigurationDetails": {
            "deploymentType": "SINGLE_MODEL",
            "modelConfigurationDetails": {
                "modelId": model,
                "instanceConfiguration": {"instanceShapeName": "VM.GPU.A10.2"},
                "scalingPolicy": {"policyType": "FIXED_SIZE", "instanceCount": 1},
            },
            "environmentConfigurationDetails": {
                "environmentConfigurationType": "OCIR_CONTAINER",
                "image": "x",
                "environmentVariables": {"MULTI_MODEL_CONFIG": json.dumps(mmc)},
            },
        },
    }
    found = service.get_deployment(deployment_id)
    assert found.deployment_type == "MULTI"
    assert [(m.model_name, m.gpu_count) for m in found.models] == [
        ("mistralai/Mistral-7B-v0.1", 1),
        ("tiiuae/falcon-7b", 1),
    ]
    assert _chat(service, deployment_id, "tiiuae/falcon-7b", stream=False, route="/v1/completions")


def test_get_multi_model_deployment_made_by_ads(emulator, service):
    """ADS test_deployment.py::test_get_multi_model_deployment: a group ADS made (its
    multi_model_metadata as ADS's fixture has it) reads back with tasks, env, artifacts and adapters."""
    from tests.test_ads_compat import ADS_MULTI_MODEL_METADATA

    group_id, deployment_id = "ocid1.datasciencemodelgroup.oc1.iad.ads", "ocid1.datasciencemodeldeployment.oc1.iad.ads"
    refs = json.loads(json.dumps(ADS_MULTI_MODEL_METADATA))
    for ref, name in zip(
        refs, ("google/gemma-2b", "microsoft/phi-2", "meta-llama/Meta-Llama-3.1-8B-Instruct"), strict=True
    ):
        ref["model_id"] = emulator.ids[name]
    emulator.state.groups[group_id] = {
        "id": group_id,
        "compartmentId": COMPARTMENT,
        "projectId": PROJECT,
        "displayName": "model_group_20250101",
        "lifecycleState": "ACTIVE",
        "createType": "CREATE",
        "timeCreated": "2025-01-01T00:00:00Z",
        "freeformTags": {"aqua_multimodel": "true"},
        "modelGroupDetails": {
            "type": "HOMOGENEOUS",
            "customMetadataList": [
                {"key": "multi_model_metadata", "value": json.dumps(refs), "category": "Other"},
                {"key": "model_group_count", "value": "3", "category": "Other"},
            ],
        },
        "memberModelEntries": {"memberModelDetails": [{"modelId": r["model_id"]} for r in refs]},
    }
    emulator.state.deployments[deployment_id] = {
        "id": deployment_id,
        "compartmentId": COMPARTMENT,
        "projectId": PROJECT,
        "displayName": "made by ADS",
        "lifecycleState": "ACTIVE",
        "timeCreated": "2025-01-01T00:00:00Z",
        "createdBy": "u",
        "modelDeploymentUrl": f"{emulator.url}/{deployment_id}",
        "freeformTags": {"OCI_AQUA": "active", "aqua_multimodel": "true", "aqua_model_id": group_id},
        "definedTags": {},
        "modelDeploymentConfigurationDetails": {
            "deploymentType": "MODEL_GROUP",
            "modelGroupConfigurationDetails": {"modelGroupId": group_id},
            "infrastructureConfigurationDetails": {
                "infrastructureType": "INSTANCE_POOL",
                "instanceConfiguration": {"instanceShapeName": "BM.GPU.A10.4"},
                "scalingPolicy": {"policyType": "FIXED_SIZE", "instanceCount": 1},
            },
            "environmentConfigurationDetails": {"environmentConfigurationType": "OCIR_CONTAINER", "image": "x"},
        },
    }
    found = service.get_deployment(deployment_id)
    assert found.deployment_type == "MULTI" and len(found.models) == 3
    assert [(m.model_name, m.gpu_count, m.model_task) for m in found.models] == [
        ("model_one", 1, "text_embedding"),
        ("model_two", 1, "image_text_to_text"),
        ("model_three", 1, "code_synthesis"),
    ]
    assert found.models[0].env_var == {"--test_key_one": "test_value_one"}
    assert found.models[2].artifact_location == "artifact_location_three"
    assert found.served_names() == ["model_one", "model_two", "model_three", "ft_model"]


def test_group_metadata_as_ads_writes_it_and_relative_service_artifact_paths(emulator, config_file):
    """The group aqua_lab makes carries every AquaMultiModelRef field; a service model whose
    artifact_location is relative resolves in the service bucket, as ADS's get_artifact_path does."""
    from aqua_lab.platforms.oci.platform import SERVICE_MODELS_BUCKET, SERVICE_MODELS_NAMESPACE
    from tests.test_ads_compat import ADS_REF_FIELDS

    config = {
        "shape": ["VM.GPU.A10.2"],
        "configuration": {"VM.GPU.A10.2": {"multi_model_deployment": [{"gpu_count": 1}]}},
    }
    relative = emulator.add_model(
        "relative-7b",
        COMPARTMENT,
        deployment_config=config,
        tags={"OCI_AQUA": "active", "task": "text-generation"},
        custom={"artifact_location": "service_models/relative-7b/abc/artifact"},
    )
    service = AquaLabService(_platform(emulator, resolve_auth(config_file=config_file)))
    spec = DeploymentSpec(
        models=[
            {"model_id": relative, "gpu_count": 1, "model_name": "rel", "env_var": {"PARAMS": "--enforce-eager"}},
            {"model_id": "intfloat/e5-mistral-7b-instruct", "gpu_count": 1, "model_name": "e5"},
        ],
        instance_shape="VM.GPU.A10.2",
        display_name="metadata",
    )
    created = service.create_deployment(spec)
    try:
        group_id = emulator.state.deployments[created.id]["modelDeploymentConfigurationDetails"][
            "modelGroupConfigurationDetails"
        ]["modelGroupId"]
        meta = {
            m["key"]: m["value"] for m in emulator.state.groups[group_id]["modelGroupDetails"]["customMetadataList"]
        }
        refs = json.loads(meta["multi_model_metadata"])
        assert all(set(r) == ADS_REF_FIELDS for r in refs)
        rel, e5 = refs
        uri = f"oci://{SERVICE_MODELS_BUCKET}@{SERVICE_MODELS_NAMESPACE}/service_models/relative-7b/abc/artifact"
        assert rel["artifact_location"] == uri and rel["params"] == {"--enforce-eager": ""}
        assert e5["model_task"] == "text_embedding" and e5["artifact_location"].startswith("oci://")
        paths = [m["model_path"] for m in json.loads(meta["MULTI_MODEL_CONFIG"])["models"]]
        assert paths[0] == f"{relative}/service_models/relative-7b/abc/artifact"
        again = service.get_deployment(created.id)
        assert [(m.model_name, m.model_task, m.params) for m in again.models] == [
            ("rel", "text_generation", "--enforce-eager"),
            ("e5", "text_embedding", ""),
        ]
    finally:
        service.delete(created.id)


def test_unknown_gpu_shape_takes_its_count_from_the_name(emulator, config_file):
    """ADS test_common_entities.py::TestComputeShapeSummary::test_set_gpu_specs: an offered GPU shape
    no bundled index knows gets the count its name ends with; two models configured for it get a plan."""
    emulator.add_shape("VM.GPU.UNKNOWN.4", 32, 512)
    config = {
        "shape": ["VM.GPU.UNKNOWN.4"],
        "configuration": {"VM.GPU.UNKNOWN.4": {"multi_model_deployment": [{"gpu_count": 2}]}},
    }
    ids = [
        emulator.add_model(f"new-shape-{i}", COMPARTMENT, deployment_config=config, tags={"OCI_AQUA": "active"})
        for i in (1, 2)
    ]
    try:
        service = AquaLabService(_platform(emulator, resolve_auth(config_file=config_file)))
        shape = {s.name: s for s in service.shapes()}["VM.GPU.UNKNOWN.4"]
        assert shape.gpu_count == 4 and shape.per_gpu_memory_in_gbs is None and "memory unknown" in shape.notes[0]
        plan = service.plan(ids)
        assert plan.error_message is None
        assert [m.gpu_count for m in plan.gpu_allocation["VM.GPU.UNKNOWN.4"].models] == [2, 2]
    finally:
        emulator.state.shapes = [s for s in emulator.state.shapes if s["name"] != "VM.GPU.UNKNOWN.4"]


# --------------------------------------------------------------------------------------------------
# faults


def test_throttling_is_retried_with_backoff(emulator, service):
    before = _requests(emulator, "/modelDeploymentShapes")
    emulator.inject("/modelDeploymentShapes", status=429, code="TooManyRequests", count=2)
    assert service.platform.list_shapes()
    assert _requests(emulator, "/modelDeploymentShapes") == before + 1  # the two 429s answered before logging


def test_persistent_5xx_is_surfaced_with_the_request_id(emulator, service):
    emulator.inject("/modelDeploymentShapes", status=500, count=10)
    with pytest.raises(UpstreamError) as err:
        service.platform.list_shapes()
    assert err.value.status == 500 and err.value.request_id
    assert "InternalServerError" in str(err.value)
    emulator.faults.clear()


def test_a_dropped_stream_ends_with_an_error_the_caller_can_show(emulator, service):
    spec = DeploymentSpec(
        models=[{"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "g"}],
        instance_shape="VM.GPU.A10.2",
        display_name="fragile",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    emulator.inject(r"/predict$", drop_after=2)
    received = []

    async def run():
        async for chunk in service.chat_stream(
            deployment.id, ChatRequest(model="g", prompt="a b c d e f", max_tokens=10)
        ):
            received.append(chunk)

    with pytest.raises(UpstreamError, match="broke"):
        asyncio.run(run())
    assert len(received) == 2


def test_a_failed_deployment_reports_why(emulator, service):
    emulator.fail_next_deployment("Container failed to start: CUDA out of memory")
    spec = DeploymentSpec(
        models=[{"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "g"}],
        instance_shape="VM.GPU.A10.2",
        display_name="doomed",
    )
    failed = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    assert failed.state == "FAILED" and "CUDA out of memory" in failed.lifecycle_details


# --------------------------------------------------------------------------------------------------
# evaluation jobs


def test_an_evaluation_per_model_of_a_multi_model_deployment(emulator, service):
    from aqua_lab.domain import EvaluationSpec
    from tests.test_payloads import assert_wire

    spec = DeploymentSpec(
        models=[
            {"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "g"},
            {"model_id": "microsoft/phi-2", "gpu_count": 1, "model_name": "p"},
        ],
        instance_shape="VM.GPU.A10.2",
        display_name="to evaluate",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    request = {
        "evaluation_source_id": deployment.id,
        "evaluation_name": "test_evaluation",
        "dataset_path": "oci://bucket@ns/path/to/the/dataset.jsonl",
        "report_path": "oci://bucket@ns/report/",
        "model_parameters": {"model": "p", "max_tokens": 500, "temperature": 0.7, "top_p": 1.0, "top_k": 50},
        "shape_name": "VM.Standard.E4.Flex",
        "block_storage_size": 50,
        "metrics": [{"name": "bertscore", "args": {}}, {"name": "rouge", "args": {}}],
    }
    emulator.state.objects[("ns", "bucket", "path/to/the/dataset.jsonl")] = b'{"prompt": "p", "completion": "c"}\n'
    evaluation = service.platform.create_evaluation(EvaluationSpec.model_validate(request))
    assert evaluation.model == "p" and evaluation.deployment_id == deployment.id
    assert evaluation.id.startswith("ocid1.datasciencemodel.")  # the evaluation model, as ADS returns it
    job = emulator.state.jobs[evaluation.job_id]
    assert_wire(
        {k: v for k, v in job.items() if k not in ("id", "lifecycleState", "timeCreated", "createdBy")},
        "CreateJobDetails",
    )
    arguments = json.loads(job["jobConfigurationDetails"]["environmentVariables"]["AIP_SMC_EVALUATION_ARGUMENTS"])
    assert arguments["params"]["model"] == "p" and arguments["params"]["top_k"] == 50
    assert arguments["input_data"] == {"format": ".jsonl", "url": "oci://bucket@ns/path/to/the/dataset.jsonl"}
    assert arguments["evaluation_target_id"] == deployment.id and arguments["evaluation_id"] == evaluation.id
    assert evaluation.job.id == evaluation.job_id  # create names the job, as ADS's create does; get its run
    assert emulator.state.job_runs[service.platform.get_evaluation(evaluation.id).job.id]["jobId"] == evaluation.job_id

    bad = {
        **request,
        "model_parameters": {"model": "nope", "max_tokens": 5},
        "dataset_path": "/home/me/data.jsonl",
        "shape_name": "VM.GPU.A10.1",
    }
    with pytest.raises(InvalidInput) as err:
        service.platform.create_evaluation(EvaluationSpec.model_validate(bad))
    fields = {p.field: str(p) for p in err.value.problems}
    assert "one of ['g', 'p']" in fields["model_parameters.model"]
    assert "oci://<bucket>@<namespace>/<path>" in fields["dataset_path"]
    assert "CPU shape" in fields["shape_name"]


def test_the_cli_speaks_to_oci_with_ads_verbs(emulator, config_file):

    env = {
        **os.environ,
        "OCI_CONFIG_LOCATION": str(config_file),
        "AQUA_LAB_OCI_ENDPOINT": emulator.url,
        "AQUA_LAB_COMPARTMENT_OCID": COMPARTMENT,
        "AQUA_LAB_SERVICE_COMPARTMENT_OCID": SERVICE,
        "AQUA_LAB_PROJECT_OCID": PROJECT,
        "OCI_SDK_DEFAULT_RETRY_ENABLED": "false",
    }

    def cli(*args):
        return run_cli(*args, env=env)

    config = cli(
        "deployment",
        "get_multimodel_deployment_config",
        "--platform",
        "oci",
        "--model_ids",
        '["google/gemma-2b", "microsoft/phi-2"]',
    )
    assert config.returncode == 0, config.stderr
    assert "VM.GPU.A10.2" in json.loads(config.stdout)["gpu_allocation"]
    created = cli(
        "deployment",
        "create",
        "--platform",
        "oci",
        "--instance_shape",
        "VM.GPU.A10.2",
        "--display_name",
        "from the cli",
        "--models",
        '[{"model_id": "google/gemma-2b", "gpu_count": 1}, {"model_id": "microsoft/phi-2", "gpu_count": 1}]',
    )
    assert created.returncode == 0, created.stderr
    deployment = json.loads(created.stdout)
    assert deployment["state"] == "ACTIVE" and deployment["tags"]["aqua_multimodel"] == "true"
    listed = json.loads(cli("deployment", "list", "--platform", "oci", "--array").stdout)
    assert deployment["id"] in [d["id"] for d in listed]
    emulator.state.objects[("ns", "b", "d.jsonl")] = b'{"prompt": "p", "completion": "c"}\n'
    evaluation = cli(
        "evaluation",
        "create",
        "--evaluation_source_id",
        deployment["id"],
        "--evaluation_name",
        "e",
        "--dataset_path",
        "oci://b@ns/d.jsonl",
        "--report_path",
        "oci://b@ns/r/",
        "--model_parameters",
        '{"model": "microsoft/phi-2", "max_tokens": 100}',
    )
    assert evaluation.returncode == 0, evaluation.stderr
    assert json.loads(evaluation.stdout)["model"] == "microsoft/phi-2"
    chat = cli(
        "deployment",
        "chat",
        "--platform",
        "oci",
        "--model_deployment_id",
        deployment["id"],
        "--model_name",
        "google/gemma-2b",
        "--prompt",
        "hello",
        "--max_tokens",
        "4",
    )
    assert chat.returncode == 0 and chat.stdout.strip() == "google/gemma-2b answers: hello", chat.stderr
    deleted = cli("deployment", "delete", "--platform", "oci", "--model_deployment_id", deployment["id"])
    assert json.loads(deleted.stdout)["state"] in ("DELETING", "DELETED")


def test_a_slow_service_is_waited_for_within_the_timeout_and_reported_past_it(emulator, config_file):
    platform = _platform(emulator, resolve_auth(config_file=config_file), timeout_s=(2, 0.5), retries=1)
    emulator.inject("/modelDeploymentShapes", delay_s=0.2)
    assert platform.list_shapes()
    emulator.inject("/modelDeploymentShapes", delay_s=1.5)
    with pytest.raises(UpstreamError, match="cannot reach the service") as err:
        platform.list_shapes()
    assert err.value.status == 502


def test_a_persistent_503_on_a_list_call_gets_the_documented_4_attempts_not_the_sdks_8(emulator, service, monkeypatch):
    import oci

    # what the SDK does outside the tests (they disable it with OCI_SDK_DEFAULT_RETRY_ENABLED=false)
    monkeypatch.setattr(oci.retry, "DEFAULT_RETRY_STRATEGY", oci.retry.RetryStrategyBuilder().get_retry_strategy())
    fault = emulator.inject(r"/modelDeployments$", status=503, code="ServiceUnavailable", count=100)
    try:
        with pytest.raises(UpstreamError) as err:
            service.platform.list_deployments()
        assert err.value.status == 503
        assert 100 - fault.count == service.platform.settings.retries == 4
    finally:
        emulator.faults.clear()
