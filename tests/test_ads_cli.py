"""A script written against ``ads aqua`` keeps working (issue 20): the seed's commands as it
writes them (``000_3f2193417997e48c.txt``), run through ``aqua-lab`` on the OCI platform against
the emulator, with every output field the seed documents present in the seed's type."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config  # noqa: E402
from tests.helpers.cli import run_cli  # noqa: E402

pytestmark = [pytest.mark.oci, pytest.mark.cli]

HOME = "ocid1.compartment.oc1..home"
OTHER = "ocid1.compartment.oc1..other"
SERVICE = "ocid1.compartment.oc1..service"
PROJECT = "ocid1.datascienceproject.oc1..aqua"
MISTRAL, FALCON = "mistralai/Mistral-7B-v0.1", "tiiuae/falcon-7b"  # the seed's own example pair

# the fields of the seed's `deployment create` output, in the seed's types
NULLABLE_STR = (str, type(None))
NUMBER_OR_NONE = (int, float, type(None))
DEPLOYMENT_FIELDS = {
    "id": str,
    "display_name": str,
    "aqua_service_model": bool,
    "model_id": str,
    "models": list,
    "aqua_model_name": str,
    "state": str,
    "description": NULLABLE_STR,
    "created_on": str,
    "created_by": str,
    "endpoint": str,
    "private_endpoint_id": NULLABLE_STR,
    "console_link": str,
    "lifecycle_details": NULLABLE_STR,
    "shape_info": dict,
    "tags": dict,
    "environment_variables": dict,
}
SHAPE_INFO_FIELDS = {
    "instance_shape": str,
    "instance_count": int,
    "ocpus": NUMBER_OR_NONE,
    "memory_in_gbs": NUMBER_OR_NONE,
}
MODEL_FIELDS = {"model_id": str, "model_name": str, "gpu_count": int, "env_var": dict}
SHAPE_FIELDS = {"core_count": int, "memory_in_gbs": int, "name": str, "shape_series": str, "gpu_specs": dict}
GPU_SPEC_FIELDS = {"gpu_memory_in_gbs": int, "gpu_count": int, "gpu_type": str}


def assert_fields(record: dict, fields: dict, what: str) -> None:
    for name, kind in fields.items():
        assert name in record, f"{what} lacks the seed's field {name!r}"
        assert isinstance(record[name], kind), f"{what}.{name} = {record[name]!r}, the seed's type is {kind}"
        if kind is int:
            assert not isinstance(record[name], bool), f"{what}.{name} is a bool, not an integer"


def objects(text: str) -> list:
    """The JSON values of an output in ADS's framing (one object after another, as jq reads it)."""
    decoder, values, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return values
        value, i = decoder.raw_decode(text, i)
        values.append(value)


@pytest.fixture(scope="module")
def emulator():
    emulator = Emulator(polls_to_active=2).start()
    emulator.ids = seed_from_bundled(emulator, SERVICE)
    for compartment in (HOME, OTHER, SERVICE):
        emulator.compartments.add(compartment)  # any other compartment is NotAuthorizedOrNotFound
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def cli(emulator, tmp_path_factory):
    config = write_api_key_config(emulator, tmp_path_factory.mktemp("oci"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("AQUA_LAB_") and k not in ("PROJECT_OCID",)}
    base.update(
        {
            "OCI_CONFIG_LOCATION": str(config),
            "AQUA_LAB_OCI_ENDPOINT": emulator.url,
            "AQUA_LAB_SERVICE_COMPARTMENT_OCID": SERVICE,
            "AQUA_LAB_DATA_DIR": str(tmp_path_factory.mktemp("local")),
            "OCI_SDK_DEFAULT_RETRY_ENABLED": "false",
        }
    )

    def run(*args: str, **env: str):
        return run_cli(*args, env={**base, **env})

    return run


@pytest.fixture
def cleanup(emulator):
    """Deployments a test makes are removed however it ends."""
    made: list[str] = []
    yield made
    for deployment_id in made:
        emulator.state.deployments.pop(deployment_id, None)


def _models(emulator, *pairs: tuple[str, int]) -> str:
    return json.dumps([{"model_id": emulator.ids[name], "gpu_count": gpus} for name, gpus in pairs])


def _create(cli, emulator, *extra: str, models=None, shape="VM.GPU.A10.2", **env: str):
    return cli(
        "deployment",
        "create",
        "--container_image_uri",
        "dsmc://odsc-vllm-serving:0.6.4.post1.2",
        "--models",
        models or _models(emulator, (MISTRAL, 1), (FALCON, 1)),
        "--instance_shape",
        shape,
        "--display_name",
        "modelDeployment_multmodel_model1_model2",
        *extra,
        **env,
    )


def _live_groups(emulator) -> set[str]:
    return {g for g, rec in emulator.state.groups.items() if rec["lifecycleState"] != "DELETED"}


# --------------------------------------------------------------------------------------------------
# planning: list_shapes and get_multimodel_deployment_config


def test_list_shapes_as_the_seed_writes_it_prints_one_object_per_shape(cli):
    out = cli("deployment", "list_shapes", "--compartment_id", HOME, AQUA_LAB_PLATFORM="oci")
    assert out.returncode == 0, out.stderr
    shapes = {s["name"]: s for s in objects(out.stdout)}  # `… list_shapes | jq .name` reads this
    a10 = shapes["VM.GPU.A10.2"]
    assert_fields(a10, SHAPE_FIELDS, "list_shapes")
    assert_fields(a10["gpu_specs"], GPU_SPEC_FIELDS, "list_shapes.gpu_specs")
    assert (a10["core_count"], a10["memory_in_gbs"], a10["gpu_specs"]["gpu_count"]) == (30, 480, 2)
    array = cli("deployment", "list_shapes", "--compartment_id", HOME, "--array", AQUA_LAB_PLATFORM="oci")
    assert [s["name"] for s in json.loads(array.stdout)] == list(shapes)


def test_without_a_compartment_the_error_names_the_option(cli):
    out = cli("deployment", "list_shapes", AQUA_LAB_PLATFORM="oci")
    assert out.returncode == 2 and "no compartment to work in" in out.stderr and "--compartment_id" in out.stderr


def test_get_multimodel_deployment_config_with_ocids_goes_to_oci_by_itself(cli, emulator):
    ids = [emulator.ids[MISTRAL], emulator.ids[FALCON]]
    out = cli(
        "deployment", "get_multimodel_deployment_config", "--model_ids", json.dumps(ids), "--compartment_id", HOME
    )
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    assert set(config) >= {"deployment_config", "gpu_allocation", "error_message"}
    split = config["gpu_allocation"]["VM.GPU.A10.2"]
    assert [(m["ocid"], m["gpu_count"]) for m in split["models"]] == [(ids[0], 1), (ids[1], 1)]
    assert split["total_gpus_available"] == 2
    # both spellings and a Python literal, as ADS's CLI takes them
    literal = cli("deployment", "get_multimodel_deployment_config", "--model-ids", str(ids), "--compartment-id", HOME)
    assert literal.returncode == 0, literal.stderr
    assert json.loads(literal.stdout)["gpu_allocation"] == config["gpu_allocation"]


# --------------------------------------------------------------------------------------------------
# create, list, get, chat, evaluation, delete


def test_create_as_the_seed_writes_it_prints_the_seeds_fields(cli, emulator, cleanup):
    out = _create(
        cli,
        emulator,
        "--env-var",
        '{"MODEL_DEPLOY_PREDICT_ENDPOINT":"/v1/chat/completions"}',
        "--compartment_id",
        HOME,
        "--project_id",
        PROJECT,
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    cleanup.append(d["id"])
    assert_fields(d, DEPLOYMENT_FIELDS, "deployment create")
    assert_fields(d["shape_info"], SHAPE_INFO_FIELDS, "shape_info")
    for model in d["models"]:
        assert_fields(model, MODEL_FIELDS, "models[]")
    assert d["state"] == "ACTIVE" and d["shape_info"] == {
        "instance_shape": "VM.GPU.A10.2",
        "instance_count": 1,
        "ocpus": None,
        "memory_in_gbs": None,
    }
    assert [m["model_name"] for m in d["models"]] == [MISTRAL, FALCON]
    assert d["model_id"].startswith("ocid1.datasciencemodelgroup.") and d["tags"]["aqua_model_id"] == d["model_id"]
    assert d["tags"]["aqua_multimodel"] == "true" and d["tags"]["OCI_AQUA"] == "active"
    env = d["environment_variables"]
    assert env["MODEL_DEPLOY_PREDICT_ENDPOINT"] == "/v1/chat/completions"
    assert env["MODEL_DEPLOY_ENABLE_STREAMING"] == "true"
    assert d["console_link"].endswith(f"/data-science/model-deployments/{d['id']}?region=us-ashburn-1")
    assert d["compartment_id"] == HOME and d["project_id"] == PROJECT

    listed = cli("deployment", "list", "--compartment_id", HOME, AQUA_LAB_PLATFORM="oci")
    rows = objects(listed.stdout)
    assert d["id"] in [r["id"] for r in rows]
    row = next(r for r in rows if r["id"] == d["id"])
    assert_fields(row, DEPLOYMENT_FIELDS, "deployment list")
    assert "model_states" not in row  # a list reads no per-model states: no misleading []

    got = cli("deployment", "get", "--model_deployment_id", d["id"], "--compartment_id", HOME)
    assert got.returncode == 0, got.stderr
    assert [s["state"] for s in json.loads(got.stdout)["model_states"]] == ["ACTIVE", "ACTIVE"]

    # the seed's /v1/completions prompt request, not streamed, with its sampling options
    chat = cli(
        "deployment",
        "chat",
        "--model_deployment_id",
        d["id"],
        "--compartment_id",
        HOME,
        "--model_name",
        FALCON,
        "--prompt",
        "what are activation functions?",
        "--route",
        "/v1/completions",
        "--no_stream",
        "--top_p",
        "0.8",
        "--stop",
        "###",
        "--max_tokens",
        "5",
    )
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == f"{FALCON} answers: what are activation"

    # evaluation: ADS's spellings and values; the project is the evaluated deployment's (the dataset
    # must be there: a create refuses one that is not, before anything is made)
    dataset = ("namespace", "bucket", "path/to/the/dataset.jsonl")
    emulator.state.objects[dataset] = b'{"prompt": "p", "completion": "c"}\n'
    evaluation = cli(
        "evaluation",
        "create",
        "--evaluation_source_id",
        d["id"],
        "--evaluation_name",
        "test_evaluation",
        "--dataset_path",
        "oci://bucket@namespace/path/to/the/dataset.jsonl",
        "--report_path",
        "oci://bucket@namespace/report/path/",
        "--model_parameters",
        json.dumps({"model": MISTRAL, "max_tokens": 500, "temperature": 0.7, "top_p": 1.0, "top_k": 50}),
        "--shape_name",
        "VM.Standard.E4.Flex",
        "--block_storage_size",
        "50",
        "--metrics",
        "[{'name': 'bertscore', 'args': {}}, {'name': 'rouge', 'args': {}}]",
        "--experiment_description",
        "a set of evaluations",
        "--force_overwrite",
        "True",
        "--compartment_id",
        HOME,
    )
    assert evaluation.returncode == 0, evaluation.stderr
    job = next(iter(emulator.state.jobs.values()))
    assert job["projectId"] == PROJECT
    no_group = cli(
        "evaluation",
        "create",
        "--evaluation_source_id",
        d["id"],
        "--evaluation_name",
        "e",
        "--dataset_path",
        "oci://b@n/d.jsonl",
        "--report_path",
        "oci://b@n/r/",
        "--model_parameters",
        json.dumps({"model": MISTRAL}),
        "--log_id",
        "ocid1.log.oc1..x",
        "--force_overwrite=False",
    )
    assert no_group.returncode == 2 and "log_id needs log_group_id" in no_group.stderr

    group = d["model_id"]
    deleted = cli(
        "deployment", "delete", "--model_deployment_id", d["id"], "--compartment_id", HOME, "--with_model_group"
    )
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["deleted_model_group_id"] == group
    assert group not in _live_groups(emulator)


def test_a_deployment_in_another_compartment_is_listed_with_its_compartment(cli, emulator, cleanup):
    out = _create(cli, emulator, "--compartment_id", OTHER, "--project_id", PROJECT, "--no_wait")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    cleanup.append(made["id"])
    home = cli("deployment", "list", "--array", AQUA_LAB_PLATFORM="oci", AQUA_LAB_COMPARTMENT_OCID=HOME)
    assert made["id"] not in [d["id"] for d in json.loads(home.stdout)]
    other = cli("deployment", "list", "--compartment_id", OTHER, "--project_id", PROJECT, AQUA_LAB_PLATFORM="oci")
    assert made["id"] in [d["id"] for d in objects(other.stdout)]
    unknown = cli("deployment", "list", "--compartment_id", "ocid1.compartment.oc1..nope", AQUA_LAB_PLATFORM="oci")
    assert unknown.returncode == 2 and "NotAuthorizedOrNotFound" in unknown.stderr and "polic" in unknown.stderr


# --------------------------------------------------------------------------------------------------
# exit codes and waiting


def test_a_create_that_fails_or_outlasts_its_timeout_exits_non_zero(cli, emulator, cleanup):
    env = {"AQUA_LAB_COMPARTMENT_OCID": HOME, "AQUA_LAB_PROJECT_OCID": PROJECT}
    emulator.fail_next_deployment("Container failed to start: out of GPU memory")
    failed = _create(cli, emulator, **env)
    assert failed.returncode == 1, failed.stderr
    assert "ended FAILED: Container failed to start: out of GPU memory" in failed.stderr
    cleanup.append(json.loads(failed.stdout)["id"])
    emulator.polls_to_active = 50  # a create that takes longer than the script waits
    try:
        slow = _create(cli, emulator, "--timeout", "0", **env)
    finally:
        emulator.polls_to_active = 2
    assert slow.returncode == 3 and "still CREATING" in slow.stderr and "--timeout" in slow.stderr
    cleanup.append(json.loads(slow.stdout)["id"])


def test_waiting_reads_the_model_group_once_and_polls_few_calls(cli, emulator, cleanup):
    before = len(emulator.state.requests)
    out = _create(cli, emulator, AQUA_LAB_COMPARTMENT_OCID=HOME, AQUA_LAB_PROJECT_OCID=PROJECT)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    cleanup.append(d["id"])
    calls = [path for _, path in emulator.state.requests[before:]]
    polls = sum(1 for p in calls if p.endswith(f"/modelDeployments/{d['id']}"))
    group_reads = sum(1 for p in calls if p.endswith(f"/modelGroups/{d['model_id']}"))
    assert group_reads == 1  # members never change: read once, not once a poll
    waiting = [p for p in calls if d["id"] in p]
    assert polls >= 2 and len(waiting) <= 3 * polls  # deployment, its work requests, model states


def test_a_refused_create_leaves_no_model_group(cli, emulator):
    groups = _live_groups(emulator)
    emulator.inject(r"/modelDeployments$", status=400, code="LimitExceeded", method="POST")
    out = _create(cli, emulator, AQUA_LAB_COMPARTMENT_OCID=HOME, AQUA_LAB_PROJECT_OCID=PROJECT)
    assert out.returncode == 2 and "LimitExceeded" in out.stderr and "limit increase" in out.stderr
    assert _live_groups(emulator) == groups


# --------------------------------------------------------------------------------------------------
# live update


def test_update_keeps_the_shape_applies_the_name_and_the_old_group_can_be_cleaned(cli, emulator, cleanup):
    env = {"AQUA_LAB_COMPARTMENT_OCID": HOME, "AQUA_LAB_PROJECT_OCID": PROJECT}
    d = json.loads(_create(cli, emulator, **env).stdout)
    cleanup.append(d["id"])
    moved = cli("deployment", "update", "--model_deployment_id", d["id"], "--instance_shape", "BM.GPU.A10.4", **env)
    assert moved.returncode == 2 and "runs on VM.GPU.A10.2" in moved.stderr, moved.stderr
    too_big = cli(
        "deployment",
        "update",
        "--model_deployment_id",
        d["id"],
        "--models",
        _models(emulator, (MISTRAL, 2), (FALCON, 2)),
        **env,
    )
    assert too_big.returncode == 2 and "VM.GPU.A10.2" in too_big.stderr, too_big.stderr
    renamed = cli(
        "deployment",
        "update",
        "--model_deployment_id",
        d["id"],
        "--display_name",
        "renamed",
        "--description",
        "two models",
        **env,
    )
    assert renamed.returncode == 0, renamed.stderr
    after = json.loads(renamed.stdout)
    assert (after["display_name"], after["description"], after["state"]) == ("renamed", "two models", "ACTIVE")
    # a name and description are the deployment's own fields: no new group (no identical version)
    assert after["model_id"] == d["model_id"] and after["update"]["update_type"] == "NONE"
    regrouped = cli(
        "deployment", "update", "--model_deployment_id", d["id"], "--models", _models(emulator, (MISTRAL, 1)), **env
    )
    assert regrouped.returncode == 0, regrouped.stderr
    after = json.loads(regrouped.stdout)
    assert after["model_id"] != d["model_id"] and after["progress"] == 100
    orphans = cli("model_group", "list", "--orphans", "--array", **env)
    assert d["model_id"] in [g["id"] for g in json.loads(orphans.stdout)], orphans.stderr
    cleaned = cli("model_group", "delete", "--orphans", "--array", **env)
    assert cleaned.returncode == 0 and d["model_id"] not in _live_groups(emulator)
    assert after["model_id"] in _live_groups(emulator)  # the group in use stays


# --------------------------------------------------------------------------------------------------
# LoRA and fine-tuned models (ADS's validate_input_models)


def test_lora_and_fine_tuned_models_are_checked_as_ads_does(cli, emulator):
    env = {"AQUA_LAB_COMPARTMENT_OCID": HOME}
    base = emulator.ids["meta-llama/Meta-Llama-3.1-8B-Instruct"]
    other = emulator.ids[MISTRAL]

    def fine_tuned(name, source):
        return emulator.add_model(
            name,
            HOME,
            tags={"OCI_AQUA": "active", "aqua_fine_tuned_model": f"{source}#base"},
            custom={"artifact_location": f"oci://ft@{emulator.namespace}/{name}", "fine_tune_source": source},
        )

    mine, foreign = fine_tuned("sql-lora", base), fine_tuned("mistral-lora", other)

    def validate(models, kind):
        return cli(
            "deployment",
            "validate",
            "--models",
            json.dumps(models),
            "--instance_shape",
            "BM.GPU.A10.4",
            "--display_name",
            "t",
            "--deployment_type",
            kind,
            **env,
        )

    def stacked(adapter, on=base):
        lora = [{"model_id": adapter, "model_name": "a"}]
        return [{"model_id": on, "model_name": "base", "gpu_count": 2, "fine_tune_weights": lora}]

    assert validate(stacked(mine), "STACKED").returncode == 0
    full = validate(stacked(other), "STACKED")
    assert full.returncode == 2 and "is not a fine-tuned model, so it is no LoRA adapter" in full.stderr
    wrong = validate(stacked(foreign), "STACKED")
    assert wrong.returncode == 2 and f"fine-tuned from {other}, not from {base}" in wrong.stderr
    ft_base = validate(stacked(mine, on=mine), "STACKED")
    assert ft_base.returncode == 2 and "sql-lora is a fine-tuned model" in ft_base.stderr
    multi = validate([{"model_id": mine, "gpu_count": 2}, {"model_id": other, "gpu_count": 2}], "MULTI")
    assert multi.returncode == 2 and "multi-model deployments take base models only" in multi.stderr


# --------------------------------------------------------------------------------------------------
# option spellings, values and the platform default


def test_the_seeds_spellings_and_python_literals_are_taken(cli, emulator):
    models = str(
        [{"model_id": emulator.ids[MISTRAL], "gpu_count": 1}, {"model_id": emulator.ids[FALCON], "gpu_count": 1}]
    )
    out = cli(
        "deployment",
        "validate",
        "--models",
        models,
        "--instance-shape",
        "VM.GPU.A10.2",
        "--display-name",
        "x",
        "--env-var",
        "{'MODEL_DEPLOY_PREDICT_ENDPOINT': '/v1/chat/completions'}",
        AQUA_LAB_COMPARTMENT_OCID=HOME,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["used_gpus"] == 2
    logs = cli(
        "deployment",
        "validate",
        "--models",
        models,
        "--instance_shape",
        "VM.GPU.A10.2",
        "--display_name",
        "x",
        "--access_log_id",
        "ocid1.log.oc1..access",
        AQUA_LAB_COMPARTMENT_OCID=HOME,
    )
    assert logs.returncode == 2 and "access_log_id needs log_group_id" in logs.stderr


def test_the_platform_follows_the_environment_and_errors_name_platform_oci(cli, emulator):
    local = cli("deployment", "get", "--model_deployment_id", "my-deployment")
    assert local.returncode == 2 and "--platform oci" in local.stderr and "AQUA_LAB_PLATFORM=oci" in local.stderr
    assert len(local.stderr.strip().splitlines()) == 1
    oci = cli(
        "deployment",
        "get",
        "--model_deployment_id",
        "my-deployment",
        AQUA_LAB_PLATFORM="oci",
        AQUA_LAB_COMPARTMENT_OCID=HOME,
    )
    # no "try the other platform" hint on OCI itself (the 404's own hint names `deployment list --platform oci`)
    assert oci.returncode == 2 and "AQUA_LAB_PLATFORM=oci" not in oci.stderr and "lists the ones" in oci.stderr
    bad = cli("deployment", "list", AQUA_LAB_PLATFORM="nowhere")
    assert bad.returncode == 2 and "AQUA_LAB_PLATFORM" in bad.stderr
    helped = cli("deployment", "create", "-h")
    assert all(name in helped.stdout for name in ("oci:", "bundled:", "local:", "AQUA_LAB_PLATFORM"))


def test_predict_routes_by_the_seeds_headers_and_model_ocid(cli, emulator, cleanup, tmp_path):
    """The seed's signed ``requests`` call, by a member's OCID or the ``model-key`` header."""
    import requests

    from aqua_lab.platforms.oci import resolve_auth

    d = json.loads(_create(cli, emulator, AQUA_LAB_COMPARTMENT_OCID=HOME, AQUA_LAB_PROJECT_OCID=PROJECT).stdout)
    cleanup.append(d["id"])
    signer = resolve_auth(config_file=str(write_api_key_config(emulator, tmp_path))).signer
    url = f"{d['endpoint']}/predict"
    body = {"prompt": "hi", "max_tokens": 3}
    by_ocid = requests.post(url, json={**body, "model": emulator.ids[FALCON]}, auth=signer, timeout=10).json()
    assert by_ocid["choices"][0]["text"].startswith(FALCON)
    by_key = requests.post(url, json={**body, "model": "x"}, headers={"model-key": MISTRAL}, auth=signer, timeout=10)
    assert by_key.json()["choices"][0]["text"].startswith(MISTRAL)


def test_model_list_on_oci_shows_names_beside_ocids(cli, emulator):
    out = cli("model", "list", "--platform", "oci", AQUA_LAB_COMPARTMENT_OCID=HOME)
    assert out.returncode == 0, out.stderr
    line = next(row for row in out.stdout.splitlines() if row.startswith(emulator.ids[FALCON]))
    assert line.rstrip().endswith(FALCON)
    unknown = cli(
        "deployment",
        "validate",
        "--models",
        '[{"model_id": "tiiuae/falcon-7c", "gpu_count": 1}]',
        "--instance_shape",
        "VM.GPU.A10.2",
        "--display_name",
        "x",
        "--platform",
        "oci",
        AQUA_LAB_COMPARTMENT_OCID=HOME,
    )
    assert unknown.returncode == 2 and "tiiuae/falcon-7b" in unknown.stderr and "GET models" not in unknown.stderr


def test_chat_asks_again_when_the_deployment_is_busy(cli, emulator, cleanup):
    d = json.loads(_create(cli, emulator, AQUA_LAB_COMPARTMENT_OCID=HOME, AQUA_LAB_PROJECT_OCID=PROJECT).stdout)
    cleanup.append(d["id"])
    ask = ("deployment", "chat", "--model_deployment_id", d["id"], "--model_name", MISTRAL, "--prompt", "hi")
    for status, extra in ((429, ()), (503, ("--no_stream",))):
        fault = emulator.inject(f"/{d['id']}/predict$", status=status, code="TooManyRequests", count=1)
        out = cli(*ask, *extra, "--max_tokens", "3", AQUA_LAB_COMPARTMENT_OCID=HOME)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"{MISTRAL} answers: hi" and fault.count == 0


def test_the_servers_default_platform_is_the_clis(monkeypatch):
    from aqua_lab.server.app import AquaLab

    monkeypatch.setenv("AQUA_LAB_PLATFORM", "oci")
    assert AquaLab().platform == "oci"
    monkeypatch.delenv("AQUA_LAB_PLATFORM")
    assert AquaLab().platform == "local"


def test_one_update_verb_takes_models_or_scaling_not_both(cli):
    out = cli(
        "deployment",
        "update",
        "--model_deployment_id",
        "ocid1.datasciencemodeldeployment.oc1..x",
        "--display_name",
        "n",
        "--instance_count",
        "2",
        AQUA_LAB_COMPARTMENT_OCID=HOME,
    )
    assert out.returncode == 2 and "update the scaling and the models in two calls" in out.stderr
