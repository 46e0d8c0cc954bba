"""What a new user met trying issue 26's OCI verbs on the emulator: updates that change no model
group, rollback errors, create's warnings, the emulator's control API, artifact and OCID errors,
BYOC containers in ``get``, and the shape table."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

# the SDK's retries are off before oci is imported: tests.test_oci_versions sees to it
from tests.test_oci_versions import (  # noqa: F401 - its place (HOME, SERVICE, PROJECT) and fixture
    FALCON,
    GEMMA,
    HOME,
    PHI,
    PROJECT,
    SERVICE,
    _create,
    _group_of,
    _models,
    _rest,
    _to_falcon,
    jp_server_config,
)

pytestmark = [pytest.mark.oci, pytest.mark.cli]
pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.helpers.oci_fixtures"]  # emulator, service, made, cli


def _versions(cli, deployment_id: str) -> list[dict]:
    listed = cli("deployment", "versions", deployment_id, "--array")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


# 1: an update that changes no model group makes no version ----------------------------------------


def test_a_name_only_update_makes_no_clone_and_no_version(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="keys")
    group = _group_of(emulator, deployment["id"])["id"]
    groups_before = set(emulator.state.groups)
    updated = cli("deployment", "update", "--model_deployment_id", deployment["id"], "--display_name", "keys2")
    assert updated.returncode == 0, updated.stderr
    out = json.loads(updated.stdout)
    # before: a CLONE made version 2 with the same members, reported as a LIVE member change
    assert set(emulator.state.groups) == groups_before
    assert _group_of(emulator, deployment["id"])["id"] == group
    assert [v["version"] for v in _versions(cli, deployment["id"])] == [1]
    assert out["display_name"] == "keys2" and out["state"] == "ACTIVE"
    assert out["update"]["update_type"] == "NONE"
    assert "no new group version" in out["update"]["reason"] and "name changes" in out["update"]["reason"]
    assert "members change" not in updated.stderr and "kept" in updated.stderr


def test_an_env_only_update_is_zdt_on_the_same_group(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="envonly")
    group = _group_of(emulator, deployment["id"])["id"]
    groups_before = set(emulator.state.groups)
    updated = cli(
        "deployment", "update", "--model_deployment_id", deployment["id"], "--env_var", '{"VLLM_LOGGING_LEVEL": "INFO"}'
    )
    assert updated.returncode == 0, updated.stderr
    out = json.loads(updated.stdout)
    assert set(emulator.state.groups) == groups_before  # before: a clone, version 2
    assert _group_of(emulator, deployment["id"])["id"] == group
    assert out["update"]["update_type"] == "ZDT" and out["update"]["model_group_id"] == group
    assert "same model group, no new version" in out["update"]["reason"]
    env = emulator.state.deployments[deployment["id"]]["modelDeploymentConfigurationDetails"][
        "environmentConfigurationDetails"
    ]["environmentVariables"]
    assert env["VLLM_LOGGING_LEVEL"] == "INFO"


# 2: rollback errors name the field and the fix -----------------------------------------------------


def test_rollback_errors_name_the_version_field_and_the_fix(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma"), (PHI, "phi")), name="rolls")
    _to_falcon(cli, deployment["id"])
    live = cli("deployment", "rollback", deployment["id"], "--version", "2")
    assert live.returncode != 0
    # before: "version 2 (…) is already the one … runs", no field, no way out
    assert "version: 2 is live already" in live.stderr
    assert f"pick another from `aqua-lab deployment versions {deployment['id']}`" in live.stderr
    unknown = cli("deployment", "rollback", deployment["id"], "--version", "9")
    assert unknown.returncode != 0
    assert "version: unknown model-group version '9'" in unknown.stderr and "[1, 2]" in unknown.stderr


@pytest.mark.server
async def test_rest_rollback_errors_carry_the_field(jp_fetch, emulator, service, made):
    spec = {"models": json.loads(_models((GEMMA, "gemma"), (PHI, "phi"))), "instance_shape": "VM.GPU.A10.2"}
    created = await _rest(jp_fetch, "deployments", method="POST", body={**spec, "display_name": "rr"}, expect=201)
    made.append(created["id"])
    service.wait(created["id"], timeout=10, interval=0.01)
    spec["models"] = json.loads(_models((GEMMA, "gemma"), (FALCON, "falcon")))
    await _rest(jp_fetch, "deployments", created["id"], method="PUT", body={**spec, "display_name": "rr"})
    service.wait(created["id"], timeout=10, interval=0.01)
    rollback = ("deployments", created["id"], "rollback")
    live = await _rest(jp_fetch, *rollback, method="POST", body={"version": 2}, expect=409)
    assert live["errors"][0]["field"] == "version" and "is live already" in live["errors"][0]["message"]
    assert "aqua-lab deployment versions" in live["errors"][0]["fix"]
    unknown = await _rest(jp_fetch, *rollback, method="POST", body={"version": 9}, expect=404)
    assert unknown["errors"][0]["field"] == "version" and "[1, 2]" in unknown["errors"][0]["fix"]


# 3: create keeps its warnings; a flex shape's estimate is said at validate and create too ----------

FLEX_MODELS = json.dumps(
    [{"model_id": GEMMA, "gpu_count": 4, "model_name": "g"}, {"model_id": PHI, "gpu_count": 4, "model_name": "p"}]
)
FLEX = (
    "--display_name",
    "flexwarn",
    "--instance_shape",
    "VM.Standard.E4.Flex",
    "--ocpus",
    "8",
    "--memory_in_gbs",
    "128",
    "--models",
    FLEX_MODELS,
)


def test_a_flex_create_prints_its_warnings_after_waiting(cli, made):
    checked = cli("deployment", "validate", *FLEX)
    assert checked.returncode == 0, checked.stderr
    # before: only `plan` said the size was the memory model's estimate
    said = json.loads(checked.stdout)["warnings"]
    assert any(
        "models[0]: model 'google/gemma-2b': its OCPUs and memory on VM.Standard.E4.Flex are estimated" in w
        for w in said
    ), said
    created = cli("deployment", "create", *FLEX)
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    made.append(out["id"])
    assert out["state"] == "ACTIVE"
    # before: the wait re-read the deployment and the printed JSON had no warnings
    assert any("estimated by the memory model" in w for w in out["warnings"]), out["warnings"]


# 4: the emulator's control API answers a bad body with a 400 naming the field ---------------------


def _control(emulator, path: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"{emulator.url}{path}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": "m"}, "compartment_id"),
        ({"display_name": "m", "compartment_id": "ocid1.compartment.oc1..x", "custom": True}, "custom"),
        ({"display_name": "m", "compartment_id": "c", "tags": ["a"]}, "tags"),
    ],
)
def test_the_control_api_names_the_missing_or_bad_field(emulator, body, field):
    status, answer = _control(emulator, "/_emulator/models", json.dumps(body).encode())
    # before: KeyError/AttributeError in the emulator, and an empty reply
    assert status == 400 and answer["message"].startswith(f"{field}: "), answer
    status, answer = _control(emulator, "/_emulator/metric", b'{"deployment_id": "x"}')
    assert status in (400, 404) and answer["message"]
    status, answer = _control(emulator, "/_emulator/models", b"[1]")
    assert status == 400 and "body" in answer["message"]
    ok, made_model = _control(emulator, "/_emulator/models", b'{"display_name": "m", "compartment_id": "c"}')
    assert ok == 200 and made_model["id"].startswith("ocid1.datasciencemodel")  # still serving


# 5: a model without an artifact location: the fix names the metadata key ---------------------------


def test_a_model_without_artifact_location_names_the_metadata_key(emulator, cli, made):
    with emulator._lock:
        bare = emulator.add_model("onnx-model", HOME, tags={"OCI_AQUA": "active"})
    models = json.dumps([{"model_id": bare, "gpu_count": 1, "model_name": "onnx"}, {"model_id": GEMMA, "gpu_count": 1}])
    done = cli("deployment", "create", "--instance_shape", "VM.GPU.A10.2", "--display_name", "bare", "--models", models)
    if done.returncode == 0:
        made.append(json.loads(done.stdout)["id"])
    assert done.returncode != 0 and "the model artifact has no Object Storage location" in done.stderr
    # before: "register the model with its artifact in Object Storage", with no word of where that is read
    assert "custom metadata key `artifact_location`" in done.stderr and "oci://bucket@namespace/prefix" in done.stderr


# 6: unknown OCIDs name the field and where to look; a second delete says it is gone ---------------

BAD = "ocid1.datasciencemodeldeployment.oc1.iad.nosuch"


def test_an_unknown_evaluation_source_names_the_field_and_the_list_verb(cli, tmp_path):
    dataset = tmp_path / "ds.jsonl"
    dataset.write_text('{"prompt": "hi", "completion": "hello"}\n')
    done = cli(
        *("evaluation", "create", "--evaluation_source_id", BAD, "--evaluation_name", "e", "--runner", "notebook"),
        *("--dataset_path", str(dataset), "--report_path", str(tmp_path / "r"), "--model_parameters", "{}"),
    )
    # before: "unknown deployment '…' — Authorization failed or requested resource not found."
    assert done.returncode == 2 and "evaluation_source_id: no deployment" in done.stderr, done.stderr
    assert "check the OCID with `aqua-lab deployment list` (--platform oci)" in done.stderr
    got = cli("deployment", "get", "--model_deployment_id", BAD)
    assert got.returncode == 2 and "`aqua-lab deployment list --platform oci` lists the ones" in got.stderr


def test_deleting_a_deleted_deployment_says_it_is_gone_not_iam(emulator, cli, made):
    deployment = _create(cli, made, _models((GEMMA, "gemma")), name="twice")
    assert cli("deployment", "delete", "--model_deployment_id", deployment["id"]).returncode == 0
    emulator.state.deployments[deployment["id"]]["lifecycleState"] = "DELETED"  # the emulator's poll, at once
    again = cli("deployment", "delete", "--model_deployment_id", deployment["id"])
    assert again.returncode == 2 and "not found (already deleted?)" in again.stderr
    assert "IAM" not in again.stderr  # before: "check the policies (e.g. allow group … to manage …)"


# 7: `deployment get` shows which container a BYOC deployment runs --------------------------------

TRITON = "iad.ocir.io/ociodscdev/mms-ref-byoc:3.0"
DIGEST = "sha256:" + "ab" * 32


def test_get_shows_the_byoc_container(cli, made):
    models = json.dumps(
        [{"model_id": GEMMA, "gpu_count": 1, "model_name": "a"}, {"model_id": PHI, "gpu_count": 1, "model_name": "b"}]
    )
    created = cli(
        *("deployment", "create", "--instance_shape", "VM.GPU.A10.2", "--display_name", "byoc"),
        *("--deployment_type", "HETEROGENEOUS", "--models", models, "--container_image_uri", TRITON),
        *("--image_digest", DIGEST, "--entrypoint", '["python", "-m", "server"]', "--cmd_var", '["--port", "8080"]'),
        *("--server_port", "8080", "--health_check_port", "8081"),
    )
    assert created.returncode == 0, created.stderr
    made.append(json.loads(created.stdout)["id"])
    got = cli("deployment", "get", "--model_deployment_id", made[-1])
    assert got.returncode == 0, got.stderr
    # before: no word of the image, its digest, how it starts or where it listens
    assert json.loads(got.stdout)["container"] == {
        "image": TRITON,
        "image_digest": DIGEST,
        "entrypoint": ["python", "-m", "server"],
        "cmd": ["--port", "8080"],
        "server_port": 8080,
        "health_check_port": 8081,
    }


# 8: the shape table has an AVAILABLE column and fits its content ----------------------------------


def test_the_shape_table_says_available_and_fits_long_series(cli):
    table = cli("deployment", "list_shapes", "--table")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    header = lines[0]
    assert header.split()[:3] == ["SHAPE", "SERIES", "AVAILABLE"]  # before: no AVAILABLE column
    series, available = header.index("SERIES"), header.index("AVAILABLE")
    skylake = [line for line in lines if "INTEL_SKYLAKE" in line]
    assert skylake, table.stdout
    for line in lines[1:]:
        # every row's series ends before the next column starts (before: INTEL_SKYLAKE ran into SLOTS)
        assert line[available - 1] == " " and line[series:available].strip() == line[series:available].rstrip()
        assert line[available:].split()[0] in ("yes", "no"), line
    assert "INTEL_SKYLAKE" in skylake[0][series:available]
