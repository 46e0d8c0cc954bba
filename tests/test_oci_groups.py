"""Seed 002's model groups that were missing on OCI (issue 26, items 7 and 8), through the CLI and
REST against the emulator: heterogeneous groups on the user's own container (BYOC: create, list, get,
chat per member, the model-group API, update, delete) and CPU model groups on a flex shape (OCPUs and
memory per model, planned and deployed)."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

import oci  # noqa: E402

from aqua_lab.platforms.oci import resolve_auth  # noqa: E402
from tests.helpers.oci_env import Place, emulator_cli  # noqa: E402
from tests.test_oci_interop import HOME as ADS_HOME  # noqa: E402 - where the ADS test works
from tests.test_oci_interop import PROJECT as ADS_PROJECT  # noqa: E402
from tests.test_oci_interop import SERVICE as ADS_SERVICE  # noqa: E402
from tests.test_server import fetch_json, oci_emulator, server_config  # noqa: E402, F401 - oci_emulator: fixture

pytestmark = [pytest.mark.oci, pytest.mark.cli]
# emulator, service, made and ads: the ADS test's, in oci_place; the CLI and REST use oci_emulator
pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.helpers.oci_fixtures"]

HOME = "ocid1.compartment.oc1..mine"  # server_config's compartment, so REST and the CLI see one another
SERVICE = "ocid1.compartment.oc1..svc"
PROJECT = "ocid1.datascienceproject.oc1..p"
GEMMA, PHI = "google/gemma-2b", "microsoft/phi-2"
TRITON = "iad.ocir.io/ociodscdev/mms-ref-byoc:3.0"  # seed 002's BYOC image
OCI = {"platform": "oci"}


@pytest.fixture
def jp_server_config(tmp_path, oci_emulator):  # noqa: F811
    return server_config(tmp_path / "data", oci_emulator)


@pytest.fixture(scope="module")
def oci_place() -> Place:
    """Where the ADS test works: tests/test_ads_reference.py's place, test_oci_interop's compartments."""
    return Place(ADS_HOME, ADS_SERVICE, ADS_PROJECT)


@pytest.fixture
def cli(oci_emulator, tmp_path):  # noqa: F811
    return emulator_cli(oci_emulator.url, oci_emulator.config_file, Place(HOME, SERVICE, PROJECT), tmp_path)


@pytest.fixture
def made_by_cli(cli):
    """Deployments a test makes are deleted however it ends."""
    ids: list[str] = []
    yield ids
    for deployment_id in ids:
        cli("deployment", "delete", "--model_deployment_id", deployment_id)


def _record(emu, deployment_id: str) -> tuple[dict, dict]:
    """What OCI holds: the deployment's configuration and its model group."""
    config = emu.state.deployments[deployment_id]["modelDeploymentConfigurationDetails"]
    group_id = config.get("modelGroupConfigurationDetails", {}).get("modelGroupId")
    return config, emu.state.groups.get(group_id, {})


def _signed(emu, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A request to the deployment's URL signed as the SDK signs it (what a client of OCI sends)."""
    from oci._vendor import requests

    auth = resolve_auth(config_file=emu.config_file)
    data = json.dumps(body) if body is not None else None
    prepared = requests.Request(
        method, f"{emu.url}{path}", headers={"content-type": "application/json"}, data=data
    ).prepare()
    auth.signer(prepared)
    response = requests.Session().send(prepared, timeout=10)
    return response.status_code, response.json()


# --------------------------------------------------------------------------------------------------
# item 7: heterogeneous groups on the user's own container


HETERO_MODELS = json.dumps(
    [
        {"model_id": GEMMA, "gpu_count": 1, "model_name": "onnx-a"},
        {"model_id": PHI, "gpu_count": 1, "model_name": "torch-b"},
    ]
)


def _ask(cli, deployment_id: str, name: str):
    """``deployment chat`` of one model, its whole answer at once."""
    return cli(
        *"deployment chat --prompt hi --no_stream".split(), "--model_deployment_id", deployment_id, "--model_name", name
    )


def _flex_plan(cli, ocpus: int, memory_in_gbs: int, *extra: str):
    sized = ("--ocpus", str(ocpus), "--memory_in_gbs", str(memory_in_gbs))
    return cli("plan", "--model_ids", f"{GEMMA},{PHI}", "--shape", "VM.Standard.E4.Flex", *sized, *extra)


async def _rest_active(jp_fetch, deployment_id: str) -> dict:
    """The deployment once the emulator says ACTIVE (it is after a poll or two)."""
    for _ in range(50):
        got = await fetch_json(jp_fetch, "deployments", deployment_id, params=OCI)
        if got["state"] == "ACTIVE":
            break
    return got


def _create_heterogeneous(cli, *extra: str, models: str = HETERO_MODELS):
    return cli(
        "deployment",
        "create",
        "--instance_shape",
        "VM.GPU.A10.2",
        "--display_name",
        "byoc",
        "--deployment_type",
        "HETEROGENEOUS",
        "--models",
        models,
        *extra,
    )


def test_a_heterogeneous_byoc_group_is_created_listed_chatted_updated_and_deleted_from_the_cli(
    cli,
    made_by_cli,
    oci_emulator,  # noqa: F811
):
    created = _create_heterogeneous(
        cli,
        "--container_image_uri",
        TRITON,
        "--image_digest",
        "sha256:" + "a" * 64,
        "--entrypoint",
        '["python", "-m", "uvicorn", "a/model/server:app", "--port", "5000", "--host", "0.0.0.0"]',
        "--cmd_var",
        "param1",
        "--server_port",
        "5000",
        "--health_check_port",
        "5000",
        "--env_var",
        '{"WEB_CONCURRENCY": "1"}',
    )
    assert created.returncode == 0, created.stderr
    deployment = json.loads(created.stdout)
    made_by_cli.append(deployment["id"])
    assert deployment["state"] == "ACTIVE" and deployment["deployment_type"] == "HETEROGENEOUS"

    # seed 002's payloads: a HETEROGENEOUS group, one keyed member per model, on the user's container
    config, group = _record(oci_emulator, deployment["id"])
    assert group["modelGroupDetails"]["type"] == "HETEROGENEOUS"
    keys = {m["inferenceKey"] for m in group["memberModelEntries"]["memberModelDetails"]}
    assert keys == {"onnx-a", "torch-b"}
    env = config["environmentConfigurationDetails"]
    assert env["environmentConfigurationType"] == "OCIR_CONTAINER" and env["image"] == TRITON
    assert env["imageDigest"] == "sha256:" + "a" * 64 and env["cmd"] == ["param1"]
    assert env["entrypoint"][:3] == ["python", "-m", "uvicorn"]
    assert env["serverPort"] == 5000 and env["healthCheckPort"] == 5000
    assert env["environmentVariables"]["WEB_CONCURRENCY"] == "1"
    assert "MODEL_DEPLOY_PREDICT_ENDPOINT" not in env["environmentVariables"]  # vLLM's, not the container's

    listed = json.loads(cli("deployment", "list", "--array").stdout)
    mine = next(d for d in listed if d["id"] == deployment["id"])
    assert mine["deployment_type"] == "HETEROGENEOUS" and [m["model_name"] for m in mine["models"]] == [
        "onnx-a",
        "torch-b",
    ]
    got = json.loads(cli("deployment", "get", "--model_deployment_id", deployment["id"]).stdout)
    assert [s["model_name"] for s in got["model_states"]] == ["onnx-a", "torch-b"]

    # each member answers for itself, routed by its inference key
    for name in ("onnx-a", "torch-b"):
        chat = _ask(cli, deployment["id"], name)
        assert chat.returncode == 0 and chat.stdout.strip() == f"{name} answers: hi", chat.stderr

    # the model-group API of the container, per member (by OCID or key), and the server's /health
    phi_id = next(m["model_id"] for m in got["models"] if m["model_name"] == "torch-b")
    base = f"/{deployment['id']}"
    assert _signed(oci_emulator, "GET", f"{base}/health") == (200, {"status": "healthy"})
    assert _signed(oci_emulator, "GET", f"{base}/models/{phi_id}/health") == (
        200,
        {"model": "torch-b", "status": "healthy"},
    )
    status, answer = _signed(oci_emulator, "POST", f"{base}/models/{phi_id}/predict", {"prompt": "x", "max_tokens": 4})
    assert status == 200 and answer["choices"][0]["text"] == "torch-b answers: x"
    status, answer = _signed(oci_emulator, "POST", f"{base}/models/onnx-a/predict", {"prompt": "y", "max_tokens": 4})
    assert status == 200 and answer["choices"][0]["text"] == "onnx-a answers: y"
    status, answer = _signed(oci_emulator, "GET", f"{base}/models/ocid1.datasciencemodel.oc1..nope/health")
    assert status == 404 and "not a member" in answer["message"]

    # an update makes a new heterogeneous group; the container stays
    renamed = HETERO_MODELS.replace("torch-b", "torch-c")
    updated = cli("deployment", "update", "--model_deployment_id", deployment["id"], "--models", renamed)
    assert updated.returncode == 0, updated.stderr
    config, group = _record(oci_emulator, deployment["id"])
    assert group["modelGroupDetails"]["type"] == "HETEROGENEOUS"
    assert {m["inferenceKey"] for m in group["memberModelEntries"]["memberModelDetails"]} == {"onnx-a", "torch-c"}
    assert config["environmentConfigurationDetails"]["image"] == TRITON

    deleted = cli("deployment", "delete", "--model_deployment_id", deployment["id"])
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["state"] in ("DELETING", "DELETED")


def test_a_heterogeneous_request_without_its_container_or_with_vllm_flags_is_refused_naming_the_field(cli):
    no_image = _create_heterogeneous(cli)
    assert no_image.returncode == 2 and not no_image.stdout
    assert "container_image_uri" in no_image.stderr and "your own container" in no_image.stderr
    flagged = json.dumps([{"model_id": GEMMA, "gpu_count": 1, "params": "--max-model-len 2048"}])
    flags = _create_heterogeneous(cli, "--container_image_uri", TRITON, models=flagged)
    assert flags.returncode == 2 and "models[0].params" in flags.stderr and "no vLLM flags" in flags.stderr


async def test_rest_creates_and_chats_a_heterogeneous_group_and_names_a_bad_field(jp_fetch, oci_emulator):  # noqa: F811
    spec = {
        "models": json.loads(HETERO_MODELS),
        "instance_shape": "VM.GPU.A10.2",
        "display_name": "byoc-rest",
        "deployment_type": "HETEROGENEOUS",
        "container_image_uri": TRITON,
        "cmd_var": ["tritonserver", "--model-repository=/opt/ds/model/deployed_model"],
        "server_port": 8000,
        "health_check_port": 8000,
    }
    created = await fetch_json(jp_fetch, "deployments", method="POST", body=spec, params=OCI, expect=201)
    try:
        got = await _rest_active(jp_fetch, created["id"])
        assert got["state"] == "ACTIVE" and got["deployment_type"] == "HETEROGENEOUS"
        ask = {"model": "onnx-a", "prompt": "hi", "stream": False, "route": "/v1/completions"}
        reply = await fetch_json(jp_fetch, "deployments", created["id"], "chat", method="POST", params=OCI, body=ask)
        assert reply["choices"][0]["text"] == "onnx-a answers: hi"
        config, _ = _record(oci_emulator, created["id"])
        assert config["environmentConfigurationDetails"]["cmd"][0] == "tritonserver"
    finally:
        await fetch_json(jp_fetch, "deployments", created["id"], method="DELETE", params=OCI)
    bad = await fetch_json(
        jp_fetch,
        "deployments",
        method="POST",
        body={**spec, "container_image_uri": None},
        params=OCI,
        expect=422,
    )
    assert "container_image_uri" in json.dumps(bad)


def test_the_emulator_refuses_a_heterogeneous_group_on_the_vllm_service_container(oci_emulator):  # noqa: F811
    """What OCI checks, so that the payloads are checked against more than our own reading of them."""
    sdk = oci.data_science.DataScienceClient(
        oci.config.from_file(str(oci_emulator.config_file)),
        service_endpoint=oci_emulator.url,
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    model_id = next(iter(oci_emulator.state.models))
    group = sdk.create_model_group(
        oci.data_science.models.CreateModelGroupDetails(
            compartment_id=HOME,
            project_id=PROJECT,
            model_group_details=oci.data_science.models.HeterogeneousModelGroupDetails(),
            member_model_entries=oci.data_science.models.MemberModelEntries(
                member_model_details=[oci.data_science.models.MemberModelDetails(model_id=model_id)]
            ),
        )
    ).data
    body = {
        "compartmentId": HOME,
        "projectId": PROJECT,
        "modelDeploymentConfigurationDetails": {
            "deploymentType": "MODEL_GROUP",
            "modelGroupConfigurationDetails": {"modelGroupId": group.id},
            "infrastructureConfigurationDetails": {
                "infrastructureType": "INSTANCE_POOL",
                "instanceConfiguration": {"instanceShapeName": "VM.GPU.A10.2"},
                "scalingPolicy": {"policyType": "FIXED_SIZE", "instanceCount": 1},
            },
            "environmentConfigurationDetails": {"environmentConfigurationType": "DEFAULT"},
        },
    }
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        sdk.create_model_deployment(
            sdk.base_client.deserialize_response_data(json.dumps(body).encode(), "CreateModelDeploymentDetails")
        )
    assert refused.value.status == 400 and "HETEROGENEOUS" in refused.value.message


# --------------------------------------------------------------------------------------------------
# item 8: CPU model groups on flex shapes


def test_the_cli_plans_a_cpu_flex_shape_in_ocpus_and_memory(cli):
    table = _flex_plan(cli, 8, 128)
    assert table.returncode == 0, table.stderr
    assert "VM.Standard.E4.Flex  (8 OCPUs, 128 GB memory)  uses 8/8 OCPUs" in table.stdout
    assert "4 OCPU(s)" in table.stdout and "GPU" not in table.stdout.split("VM.Standard.E4.Flex", 1)[1]
    # too little memory for both: the memory model says so, in memory and OCPU words
    small = _flex_plan(cli, 2, 12, "--json")
    refused = json.loads(small.stdout)
    assert not refused["gpu_allocation"]
    why = refused["incompatible_shapes"]["VM.Standard.E4.Flex"][0]
    assert "need about 14.2 GB of memory together but 12 GB is asked" in why


async def test_rest_plans_show_the_ocpu_split(jp_fetch):
    plan = await fetch_json(
        jp_fetch,
        "plans",
        method="POST",
        body={"model_ids": [GEMMA, PHI], "ocpus": 8, "memory_in_gbs": 128},
        params=OCI,
    )
    flex = plan["gpu_allocation"]["VM.Standard.E4.Flex"]
    assert flex["slot_unit"] == "OCPU" and flex["total_gpus_available"] == 8
    assert [(m["gpu_count"], m["gpu_memory_in_gbs"]) for m in flex["models"]] == [(4, 64.0), (4, 64.0)]
    assert "VM.GPU.A10.2" in plan["gpu_allocation"]  # the GPU shapes are planned as before


def test_seed_002s_cpu_example_deploys_from_the_cli_and_a_size_beyond_it_is_refused(cli, made_by_cli, oci_emulator):  # noqa: F811
    models = json.dumps(
        [{"model_id": GEMMA, "gpu_count": 4, "model_name": "g"}, {"model_id": PHI, "gpu_count": 4, "model_name": "p"}]
    )
    common = ("--instance_shape", "VM.Standard.E4.Flex", "--display_name", "cpu group", "--models", models)
    created = cli("deployment", "create", *common, "--ocpus", "8", "--memory_in_gbs", "128")
    assert created.returncode == 0, created.stderr
    deployment = json.loads(created.stdout)
    made_by_cli.append(deployment["id"])
    assert deployment["state"] == "ACTIVE"
    assert deployment["shape_info"] == {
        "instance_shape": "VM.Standard.E4.Flex",
        "instance_count": 1,
        "ocpus": 8.0,
        "memory_in_gbs": 128.0,
    }
    config, group = _record(oci_emulator, deployment["id"])
    instance = config["infrastructureConfigurationDetails"]["instanceConfiguration"]
    assert instance["modelDeploymentInstanceShapeConfigDetails"] == {"ocpus": 8.0, "memoryInGBs": 128.0}
    assert group["modelGroupDetails"]["type"] == "HOMOGENEOUS"
    chat = _ask(cli, deployment["id"], "p")
    assert chat.returncode == 0 and chat.stdout.strip() == "p answers: hi", chat.stderr

    too_few = cli("deployment", "create", *common, "--ocpus", "4", "--memory_in_gbs", "128")
    assert too_few.returncode == 2 and "ocpus" in too_few.stderr
    assert "the models need 8 OCPUs (their gpu_count) but 4 are asked" in too_few.stderr
    too_big = cli("deployment", "create", *common, "--ocpus", "128", "--memory_in_gbs", "128")
    assert too_big.returncode == 2 and "VM.Standard.E4.Flex offers at most 64" in too_big.stderr
    no_memory = cli("deployment", "create", *common, "--ocpus", "8", "--memory_in_gbs", "12")
    assert no_memory.returncode == 2 and "memory_in_gbs" in no_memory.stderr and "GB is asked" in no_memory.stderr


async def test_rest_deploys_on_a_cpu_flex_shape_and_names_the_ocpus_field(jp_fetch, oci_emulator):  # noqa: F811
    spec = {
        "models": [{"model_id": GEMMA, "gpu_count": 2, "model_name": "g"}, {"model_id": PHI, "gpu_count": 2}],
        "instance_shape": "VM.Standard.E4.Flex",
        "display_name": "cpu-rest",
        "ocpus": 4,
        "memory_in_gbs": 64,
    }
    created = await fetch_json(jp_fetch, "deployments", method="POST", body=spec, params=OCI, expect=201)
    try:
        config, _ = _record(oci_emulator, created["id"])
        size = config["infrastructureConfigurationDetails"]["instanceConfiguration"]
        assert size["modelDeploymentInstanceShapeConfigDetails"] == {"ocpus": 4.0, "memoryInGBs": 64.0}
    finally:
        await fetch_json(jp_fetch, "deployments", created["id"], method="DELETE", params=OCI)
    bad = await fetch_json(jp_fetch, "deployments", method="POST", body={**spec, "ocpus": 2}, params=OCI, expect=422)
    assert "ocpus" in json.dumps(bad) and "4 OCPUs" in json.dumps(bad)


# --------------------------------------------------------------------------------------------------
# both, read by real ADS (deselected unless -m ads_reference)


@pytest.mark.ads_reference
def test_ads_reads_aqua_lab_heterogeneous_and_cpu_deployments(emulator, service, ads, made):  # noqa: F811
    from aqua_lab.domain import DeploymentSpec

    byoc = service.create_deployment(
        DeploymentSpec(
            models=[
                {"model_id": emulator.ids[GEMMA], "gpu_count": 1, "model_name": "onnx-a"},
                {"model_id": emulator.ids[PHI], "gpu_count": 1, "model_name": "torch-b"},
            ],
            instance_shape="VM.GPU.A10.2",
            display_name="byoc for ADS",
            deployment_type="HETEROGENEOUS",
            container_image_uri=TRITON,
        )
    )
    made.append(byoc.id)
    cpu = service.create_deployment(
        DeploymentSpec(
            models=[{"model_id": emulator.ids[PHI], "gpu_count": 8, "model_name": "phi"}],
            instance_shape="VM.Standard.E4.Flex",
            display_name="cpu for ADS",
            ocpus=8,
            memory_in_gbs=128,
        )
    )
    made.append(cpu.id)
    for deployment_id in (byoc.id, cpu.id):
        assert service.wait(deployment_id, timeout=10, interval=0.01).state == "ACTIVE"
    got = ads("get", model_deployment_id=byoc.id)
    assert [m["model_name"] for m in got["models"]] == ["onnx-a", "torch-b"]
    got = ads("get", model_deployment_id=cpu.id)
    assert got["shape_info"]["ocpus"] == 8 and got["shape_info"]["memory_in_gbs"] == 128
    assert [m["model_name"] for m in got["models"]] == ["phi"]
    listed = [d["id"] for d in ads("list", compartment_id=ADS_HOME)]
    assert byoc.id in listed and cpu.id in listed


@pytest.mark.local
def test_the_local_platform_refuses_a_container_it_cannot_run_and_points_to_its_own_model_group_api(tmp_path):
    from aqua_lab.domain import DeploymentSpec
    from aqua_lab.errors import InvalidInput
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.platforms.local.models import SMOLLM2_ID
    from aqua_lab.service import AquaLabService

    service = AquaLabService(LocalPlatform(data_dir=tmp_path))
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "a"}],
        instance_shape=service.shapes()[0].name,
        display_name="byoc here",
        deployment_type="HETEROGENEOUS",
        container_image_uri=TRITON,
    )
    with pytest.raises(InvalidInput) as refused:
        service.create_deployment(spec)
    assert refused.value.problems[0].field == "deployment_type"
    assert "/models/{name}/predict" in refused.value.problems[0].fix
    assert service.list_deployments() == []
