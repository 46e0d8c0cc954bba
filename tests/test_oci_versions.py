"""Model-group versioning and live update as seeds 002 and 003 describe them (issue 26, item 9), on
the emulator through the real ``oci`` SDK, by the CLI and the REST API: LIVE for group-only changes
(ZDT otherwise, and the answer says why), CLONE-made versions with a history to list and roll back
to, settable inference keys usable as ``model``, and the 500-model limit of a group."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

import oci  # noqa: E402

from aqua_lab.domain import DeploymentSpec  # noqa: E402
from tests.test_server import fetch_json  # noqa: E402

pytestmark = pytest.mark.oci
pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.helpers.oci_fixtures"]  # emulator, service, made, cli

HOME = "ocid1.compartment.oc1..versions"
SERVICE = "ocid1.compartment.oc1..versionsservice"
PROJECT = "ocid1.datascienceproject.oc1..versions"
GEMMA, PHI, FALCON = "google/gemma-2b", "microsoft/phi-2", "tiiuae/falcon-7b"
LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"


def _models(*entries: tuple[str, str], **keys: str) -> str:
    return json.dumps(
        [
            {"model_id": m, "gpu_count": 1, "model_name": n, **({"inference_key": keys[n]} if n in keys else {})}
            for m, n in entries
        ]
    )


def _create(cli, made, models: str, name: str = "versions") -> dict:
    done = cli("deployment", "create", "--instance_shape", "VM.GPU.A10.2", "--display_name", name, "--models", models)
    assert done.returncode == 0, done.stderr
    deployment = json.loads(done.stdout)
    made.append(deployment["id"])
    return deployment


def _to_falcon(cli, deployment_id: str):
    """``deployment update`` from gemma + phi to gemma + falcon (version 2 of the group)."""
    done = cli(
        "deployment",
        "update",
        "--model_deployment_id",
        deployment_id,
        "--models",
        _models((GEMMA, "gemma"), (FALCON, "falcon")),
    )
    assert done.returncode == 0, done.stderr
    return done


def _chat(cli, deployment_id: str, model: str, prompt: str):
    return cli(
        "deployment",
        "chat",
        "--model_deployment_id",
        deployment_id,
        "--model_name",
        model,
        "--prompt",
        prompt,
        "--no_stream",
    )


def _group_of(emulator, deployment_id: str) -> dict:
    config = emulator.state.deployments[deployment_id]["modelDeploymentConfigurationDetails"]
    return emulator.state.groups[config["modelGroupConfigurationDetails"]["modelGroupId"]]


# LIVE or ZDT ---------------------------------------------------------------------------------------


def test_a_members_only_update_of_a_homogeneous_group_is_live_and_says_why(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")))
    updated = _to_falcon(cli, deployment["id"])
    out = json.loads(updated.stdout)
    # before: every update was a ZDT replacement, and nothing said so
    assert out["update"]["update_type"] == "LIVE"
    assert "only the HOMOGENEOUS model group's members change" in out["update"]["reason"]
    assert "aqua-lab: LIVE update to model group" in updated.stderr
    assert [m["model_name"] for m in out["models"]] == ["gemma", "falcon"]
    assert out["state"] == "ACTIVE"


def test_an_update_that_changes_the_environment_is_zdt_and_says_why(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="zdt")
    updated = cli(
        "deployment",
        "update",
        "--model_deployment_id",
        deployment["id"],
        "--env_var",
        '{"VLLM_LOGGING_LEVEL": "DEBUG"}',
    )
    assert updated.returncode == 0, updated.stderr
    out = json.loads(updated.stdout)
    assert out["update"]["update_type"] == "ZDT"
    assert "environment variables change" in out["update"]["reason"]
    assert "aqua-lab: ZDT update" in updated.stderr
    env = emulator.state.deployments[deployment["id"]]["modelDeploymentConfigurationDetails"][
        "environmentConfigurationDetails"
    ]["environmentVariables"]
    assert env["VLLM_LOGGING_LEVEL"] == "DEBUG"  # before: --env_var was dropped on the way


def test_the_emulator_refuses_a_live_update_that_changes_more_than_the_group(emulator, service, made):
    deployment = service.create_deployment(
        DeploymentSpec(
            models=[{"model_id": GEMMA, "gpu_count": 1}], instance_shape="VM.GPU.A10.2", display_name="strict"
        )
    )
    made.append(deployment.id)
    service.wait(deployment.id, timeout=10, interval=0.01)
    sdk = oci.data_science.DataScienceClient(
        oci.config.from_file(str(emulator.config_file)),
        service_endpoint=emulator.url,
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    group = _group_of(emulator, deployment.id)["id"]
    body = {
        "modelDeploymentConfigurationDetails": {
            "deploymentType": "MODEL_GROUP",
            "updateType": "LIVE",
            "modelGroupConfigurationDetails": {"modelGroupId": group},
            "environmentConfigurationDetails": {
                "environmentConfigurationType": "OCIR_CONTAINER",
                "environmentVariables": {"NEW": "1"},
            },
        }
    }
    details = sdk.base_client.deserialize_response_data(json.dumps(body).encode(), "UpdateModelDeploymentDetails")
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        sdk.update_model_deployment(deployment.id, details)
    assert refused.value.status == 400 and "LIVE update changes only the model group" in refused.value.message


# versions and rollback ------------------------------------------------------------------------------


def test_an_update_clones_the_group_and_versions_lists_the_history(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="history")
    first = _group_of(emulator, deployment["id"])
    _to_falcon(cli, deployment["id"])
    second = _group_of(emulator, deployment["id"])
    # the seed's CLONE: the source group plus its modifications, in the source's version history
    assert second["createType"] == "CLONE" and second["sourceModelGroupId"] == first["id"]
    assert second["modelGroupVersionHistoryId"] == first["modelGroupVersionHistoryId"]
    assert {m["modelId"] for m in second["memberModelEntries"]["memberModelDetails"]} == {
        emulator.ids[GEMMA],
        emulator.ids[FALCON],
    }

    listed = cli("deployment", "versions", deployment["id"], "--array")
    assert listed.returncode == 0, listed.stderr  # before: "invalid choice: 'versions'"
    versions = json.loads(listed.stdout)
    assert [(v["version"], v["model_group_id"], v["live"]) for v in versions] == [
        (1, first["id"], False),
        (2, second["id"], True),
    ]
    assert all(v["created_on"] for v in versions)
    assert {m["model_id"] for m in versions[0]["members"]} == {emulator.ids[GEMMA], emulator.ids[PHI]}
    table = cli("deployment", "versions", "--model_deployment_id", deployment["id"], "--table")
    assert table.stdout.splitlines()[0].split()[:3] == ["VERSION", "LIVE", "CREATED"]


def test_rollback_is_a_live_update_back_to_an_earlier_version(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="rollback")
    first = _group_of(emulator, deployment["id"])["id"]
    _to_falcon(cli, deployment["id"])
    rolled = cli("deployment", "rollback", deployment["id"], "--version", "1")
    assert rolled.returncode == 0, rolled.stderr  # before: "invalid choice: 'rollback'"
    out = json.loads(rolled.stdout)
    assert out["update"]["update_type"] == "LIVE" and out["update"]["version"] == 1
    assert "rollback changes only the model group" in out["update"]["reason"]
    assert [m["model_name"] for m in out["models"]] == ["gemma", "phi"]
    assert _group_of(emulator, deployment["id"])["id"] == first
    assert emulator.state.deployments[deployment["id"]]["freeformTags"]["aqua_model_id"] == first  # ADS reads it
    versions = json.loads(cli("deployment", "versions", deployment["id"], "--array").stdout)
    assert [(v["version"], v["live"]) for v in versions] == [(1, True), (2, False)]

    again = cli("deployment", "rollback", deployment["id"], "--version", "1")
    assert again.returncode != 0 and "version: 1 is live already" in again.stderr
    missing = cli("deployment", "rollback", deployment["id"], "--version", "7")
    assert missing.returncode != 0 and "unknown model-group version" in missing.stderr and "[1, 2]" in missing.stderr


def test_the_live_version_is_never_deleted_and_the_others_leave_the_history(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="guard")
    _to_falcon(cli, deployment["id"])
    assert cli("deployment", "rollback", deployment["id"], "--version", "1").returncode == 0
    versions = json.loads(cli("deployment", "versions", deployment["id"], "--array").stdout)
    live, other = versions[0]["model_group_id"], versions[1]["model_group_id"]
    kept = cli("model_group", "delete", "--model_group_id", live)
    assert kept.returncode != 0 and "still used by deployment" in kept.stderr
    assert cli("model_group", "delete", "--model_group_id", other).returncode == 0
    left = json.loads(cli("deployment", "versions", deployment["id"], "--array").stdout)
    assert [(v["version"], v["live"]) for v in left] == [(1, True)]
    gone = cli("deployment", "rollback", deployment["id"], "--version", "2")
    assert gone.returncode != 0 and "unknown model-group version" in gone.stderr and "[1]" in gone.stderr


# inference keys ------------------------------------------------------------------------------------


def test_inference_keys_set_at_create_address_the_model_in_chat(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi"), gemma="gem-key"), name="keys")
    members = _group_of(emulator, deployment["id"])["memberModelEntries"]["memberModelDetails"]
    assert {m["modelId"]: m.get("inferenceKey") for m in members} == {
        emulator.ids[GEMMA]: "gem-key",
        emulator.ids[PHI]: None,
    }
    assert [m.get("inference_key") for m in deployment["models"]] == ["gem-key", None]
    chat = _chat(cli, deployment["id"], "gem-key", "Hi")
    assert chat.returncode == 0, chat.stderr  # before: "--models: extra inputs are not permitted"
    assert chat.stdout.startswith("gemma answers: Hi")


def test_the_emulator_routes_a_predict_by_inference_key_as_seed_003_does(emulator, service, made, cli):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi"), phi="phi-key"), name="predict")
    from oci._vendor import requests

    from aqua_lab.platforms.oci import resolve_auth as auth_of

    auth = auth_of(config_file=emulator.config_file)
    for how in (
        {"json": {"model": "phi-key", "prompt": "q", "max_tokens": 8}},
        {"json": {"prompt": "q", "max_tokens": 8}},
    ):
        headers = {"model-key": "phi-key"} if "model" not in how["json"] else {}
        prepared = requests.Request(
            "POST", f"{emulator.url}/{deployment['id']}/predict", json=how["json"], headers=headers
        ).prepare()
        auth.signer(prepared)
        answer = requests.Session().send(prepared, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "phi"


def test_inference_keys_are_kept_and_changed_by_an_update(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi"), gemma="g1"), name="rekey")
    # no --models: the deployment's own models, keys included
    kept = cli("deployment", "update", "--model_deployment_id", deployment["id"], "--display_name", "rekeyed")
    assert kept.returncode == 0, kept.stderr
    assert [m.get("inference_key") for m in json.loads(kept.stdout)["models"]] == ["g1", None]
    changed = cli(
        "deployment",
        "update",
        "--model_deployment_id",
        deployment["id"],
        "--models",
        _models((GEMMA, "gemma"), (PHI, "phi"), gemma="g2", phi="p2"),
    )
    assert changed.returncode == 0, changed.stderr
    assert [m["inference_key"] for m in json.loads(changed.stdout)["models"]] == ["g2", "p2"]
    versions = json.loads(cli("deployment", "versions", deployment["id"], "--array").stdout)
    assert {m["inference_key"] for m in versions[-1]["members"]} == {"g2", "p2"}
    chat = _chat(cli, deployment["id"], "p2", "Yo")
    assert chat.returncode == 0 and chat.stdout.startswith("phi answers: Yo")


@pytest.mark.parametrize(
    ("keys", "field", "says"),
    [
        ({"gemma": "has space"}, "models[0].inference_key", "is not a usable inference key"),
        ({"gemma": "k" * 33}, "models[0].inference_key", "1–32"),
        ({"gemma": "same", "phi": "same"}, "models[1].inference_key", "already used by models[0]"),
        ({"gemma": "phi"}, "models[0].inference_key", "is the served name of models[1]"),
    ],
)
def test_bad_inference_keys_are_refused_naming_the_field(cli, keys, field, says):
    done = cli(
        "deployment", "create", "--instance_shape", "VM.GPU.A10.2", "--display_name", "bad",
        "--models", _models((GEMMA, "gemma"), (PHI, "phi"), **keys), "--no_wait",
    )  # fmt: skip
    assert done.returncode == 2 and field in done.stderr and says in done.stderr, done.stderr


def test_a_stacked_members_key_is_its_served_name(emulator, service, made, cli):
    base = emulator.ids[LLAMA]
    lora = emulator.add_model(
        "versions-lora",
        HOME,
        tags={"OCI_AQUA": "active", "aqua_fine_tuned_model": f"{base}#Meta-Llama-3.1-8B-Instruct"},
        custom={"artifact_location": f"oci://ft@{emulator.namespace}/ft/v", "fine_tune_source": base},
    )
    models = [
        {
            "model_id": base,
            "gpu_count": 2,
            "inference_key": "base",
            "fine_tune_weights": [{"model_id": lora, "inference_key": "sql-lora"}],
        }
    ]
    done = cli(
        "deployment", "create", "--instance_shape", "BM.GPU.A10.4", "--display_name", "stacked keys",
        "--deployment_type", "STACKED", "--models", json.dumps(models),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    deployment = json.loads(done.stdout)
    made.append(deployment["id"])
    members = _group_of(emulator, deployment["id"])["memberModelEntries"]["memberModelDetails"]
    assert {m["inferenceKey"] for m in members} == {"base", "sql-lora"}
    chat = _chat(cli, deployment["id"], "sql-lora", "Q")
    assert chat.returncode == 0 and chat.stdout.startswith("sql-lora answers: Q"), chat.stderr
    models[0]["model_name"] = "other"
    refused = cli(
        "deployment", "create", "--instance_shape", "BM.GPU.A10.4", "--display_name", "bad",
        "--deployment_type", "STACKED", "--models", json.dumps(models), "--no_wait",
    )  # fmt: skip
    assert refused.returncode == 2 and "in a stacked group the inference key is the served name" in refused.stderr


# REST -----------------------------------------------------------------------------------------------


@pytest.fixture
def jp_server_config(emulator, tmp_path):
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}},
        "AquaLab": {
            "platform": "local",
            "data_dir": str(tmp_path / "data"),
            "oci_config_file": str(emulator.config_file),
            "compartment_id": HOME,
            "project_id": PROJECT,
            "service_compartment_id": SERVICE,
            "oci_endpoint": emulator.url,
        },
    }


async def _rest(jp_fetch, *parts, method="GET", body=None, platform="oci", expect=200):
    return await fetch_json(jp_fetch, *parts, method=method, body=body, params={"platform": platform}, expect=expect)


@pytest.mark.server
async def test_rest_lists_versions_and_rolls_back(jp_fetch, emulator, service, made):
    spec = {
        "models": json.loads(_models((GEMMA, "gemma"), (PHI, "phi"), gemma="gk")),
        "instance_shape": "VM.GPU.A10.2",
        "display_name": "rest versions",
    }
    created = await _rest(jp_fetch, "deployments", method="POST", body=spec, expect=201)
    made.append(created["id"])
    service.wait(created["id"], timeout=10, interval=0.01)
    spec["models"] = json.loads(_models((GEMMA, "gemma"), (FALCON, "falcon"), gemma="gk"))
    updated = await _rest(jp_fetch, "deployments", created["id"], method="PUT", body=spec)
    assert updated["update"]["update_type"] == "LIVE" and updated["update"]["version"] == 2
    service.wait(created["id"], timeout=10, interval=0.01)
    versions = (await _rest(jp_fetch, "deployments", created["id"], "versions"))["data"]
    assert [(v["version"], v["live"]) for v in versions] == [(1, False), (2, True)]
    rolled = await _rest(jp_fetch, "deployments", created["id"], "rollback", method="POST", body={"version": 1})
    assert (
        rolled["update"]["update_type"] == "LIVE"
        and rolled["update"]["model_group_id"] == versions[0]["model_group_id"]
    )
    bad = await _rest(
        jp_fetch, "deployments", created["id"], "rollback", method="POST", body={"version": 0}, expect=422
    )
    assert "version" in json.dumps(bad)


@pytest.mark.server
async def test_rest_local_says_versions_are_not_supported_on_local(jp_fetch):
    for parts, method, body in (
        (("deployments", "local-x", "versions"), "GET", None),
        (("deployments", "local-x", "rollback"), "POST", {"version": 1}),
    ):
        answer = await _rest(jp_fetch, *parts, method=method, body=body, platform="local", expect=409)
        assert "not supported on local" in json.dumps(answer)


@pytest.mark.server
async def test_rest_local_refuses_inference_keys_on_a_multi_model_deployment(jp_fetch):
    shapes = (await _rest(jp_fetch, "shapes", platform="local"))["data"]
    from aqua_lab.platforms.local.models import SMOLLM2_ID

    spec = {
        "models": [
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "a", "inference_key": "ka"},
        ],
        "instance_shape": shapes[0]["name"],
        "display_name": "keys local",
    }
    answer = await _rest(jp_fetch, "deployments", "validate", method="POST", body=spec, platform="local", expect=409)
    assert "inference keys (ka) are not supported on local" in json.dumps(answer)


@pytest.mark.server
async def test_rest_a_group_over_500_models_is_refused_with_the_limit(jp_fetch, emulator):
    base = emulator.ids[LLAMA]
    weights = [{"model_id": f"{base}-lora-{i}", "model_name": f"l{i}"} for i in range(500)]
    spec = {
        "models": [{"model_id": base, "gpu_count": 2, "model_name": "base", "fine_tune_weights": weights}],
        "instance_shape": "BM.GPU.A10.4",
        "display_name": "too many",
        "deployment_type": "STACKED",
    }
    answer = await _rest(jp_fetch, "deployments", "validate", method="POST", body=spec, expect=422)
    text = json.dumps(answer)
    # before: the adapters' own checks only; nothing said a group holds at most 500
    assert "would hold 501 models; a model group holds at most 500" in text, text


def test_versions_show_each_groups_state_as_it_is_now_not_as_first_read(emulator, cli, made, service):
    # found in review: groups were cached whatever their state, so a version first read while
    # CREATING stayed CREATING in every later listing
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="states")
    _to_falcon(cli, deployment["id"])
    live = _group_of(emulator, deployment["id"])
    old = next(v for v in service.deployment_versions(deployment["id"]) if not v.live)
    emulator.state.groups[old.model_group_id]["lifecycleState"] = "CREATING"
    assert {v.version: v.state for v in service.deployment_versions(deployment["id"])}[old.version] == "CREATING"
    emulator.state.groups[old.model_group_id]["lifecycleState"] = "ACTIVE"
    states = {v.model_group_id: v.state for v in service.deployment_versions(deployment["id"])}
    assert states == {old.model_group_id: "ACTIVE", live["id"]: "ACTIVE"}
