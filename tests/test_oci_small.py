"""Issue 26 item 6: the smaller interop defects, each as the seed's command or ADS's call meets it —
a model addressed by its OCID, where a listing's platform came from, ``--no_stream``'s help, pydantic's
wording, an update's advice, ADS's default stacked name, ``--ocpus``/``--memory_in_gbs``, an estimated
GPU count and ``list_shapes``' ``available``."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from pydantic import ValidationError  # noqa: E402

from aqua_lab.domain import CompareRequest, Deployment, DeploymentSpec, EvaluationSpec  # noqa: E402
from aqua_lab.emulator.seed import by_reference  # noqa: E402
from aqua_lab.errors import InvalidInput  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402
from tests.helpers.cli import run_cli  # noqa: E402
from tests.helpers.oci_env import emulator_env  # noqa: E402

pytestmark = [pytest.mark.oci, pytest.mark.cli]
pytest_plugins = ["tests.helpers.oci_fixtures"]  # emulator, service

HOME = "ocid1.compartment.oc1..home"
SERVICE = "ocid1.compartment.oc1..service"
PROJECT = "ocid1.datascienceproject.oc1..aqua"
MISTRAL, FALCON = "mistralai/Mistral-7B-v0.1", "tiiuae/falcon-7b"
#: ADS's default name of a stacked base is the model's display name: this one is 37 characters
LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"
SPEC = {"instance_shape": "VM.GPU.A10.2", "display_name": "small"}


@pytest.fixture(scope="module")
def env(emulator, oci_place, tmp_path_factory) -> dict[str, str]:
    """A user's environment for the CLI on the emulator, with no platform chosen."""
    data_dir = tmp_path_factory.mktemp("local")
    return emulator_env(emulator.url, emulator.config_file, oci_place, data_dir, OCI_SDK_DEFAULT_RETRY_ENABLED="false")


def cli(env, *args: str, **more: str):
    return run_cli(*args, env={**env, **more})


@pytest.fixture
def made(emulator):
    """Deployments a test makes are removed however it ends."""
    ids: list[str] = []
    yield ids
    for deployment_id in ids:
        emulator.state.deployments.pop(deployment_id, None)


def _deploy(service, made, models: list[dict], shape: str = "BM.GPU.A10.4") -> Deployment:
    created = service.create_deployment(DeploymentSpec(models=models, instance_shape=shape, display_name="small"))
    made.append(created.id)
    return service.wait(created.id, timeout=10, interval=0.01)


# --------------------------------------------------------------------------------------------------
# a. a model's OCID wherever a served name is taken


def test_chat_and_compare_take_a_models_ocid_as_seed_003_addresses_it(emulator, env, service, made):
    falcon, mistral = emulator.ids[FALCON], emulator.ids[MISTRAL]
    d = _deploy(
        service,
        made,
        [
            {"model_id": MISTRAL, "gpu_count": 1},
            {"model_id": FALCON, "gpu_count": 1, "model_name": "f1"},
            {"model_id": FALCON, "gpu_count": 1, "model_name": "f2"},
        ],
    )
    assert d.state == "ACTIVE"
    chat = ("deployment", "chat", "--model_deployment_id", d.id, "--prompt", "hello", "--max_tokens", "4")
    by_ocid = cli(env, *chat, "--model_name", mistral, "--no_stream")
    assert by_ocid.returncode == 0, by_ocid.stderr
    assert by_ocid.stdout.strip() == f"{MISTRAL} answers: hello"
    # one model served under two names: the OCID cannot pick one, and the error says which to use
    twice = cli(env, *chat, "--model_name", falcon)
    assert twice.returncode == 2 and f"{falcon!r} is served under several names: ['f1', 'f2']" in twice.stderr
    unknown = cli(env, *chat, "--model_name", "ocid1.datasciencemodel.oc1..nope")
    assert unknown.returncode == 2 and "or a model's id" in unknown.stderr

    async def compare():
        request = CompareRequest(models=[mistral, "f2"], messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        return [e async for e in service.compare(d.id, request)]

    done = {e["model"] for e in asyncio.run(compare()) if e["type"] == "done"}
    assert done == {MISTRAL, "f2"}


def test_a_local_model_is_found_by_its_id_too():
    from aqua_lab.service.chat import served_name

    local = Deployment(
        id="local-1",
        display_name="d",
        platform="local",
        state="ACTIVE",
        instance_shape="LOCAL.CPU.2",
        models=[{"model_id": "smollm2-135m-instruct", "model_name": "smol", "gpu_count": 1}],
    )
    assert served_name(local, "smollm2-135m-instruct", "model") == "smol"
    assert served_name(local, "smol", "model") == "smol"
    with pytest.raises(InvalidInput, match=r"use one of \['smol'\] or a model's id"):
        served_name(local, "other", "model")


# --------------------------------------------------------------------------------------------------
# b. a listing says which platform answered when nothing chose it


@pytest.mark.parametrize(
    "verb", [("deployment", "list_shapes"), ("deployment", "list"), ("evaluation", "list")], ids=" ".join
)
def test_a_listing_on_the_default_platform_says_where_it_went(env, verb):
    defaulted = cli(env, *verb)
    assert defaulted.returncode == 0, defaulted.stderr
    assert defaulted.stderr.strip() == (
        "aqua-lab: note: answered by the local platform (this verb's default); to ask another: "
        "--platform bundled|oci, or export AQUA_LAB_PLATFORM=oci"
    )
    for chosen in (cli(env, *verb, "--platform", "local"), cli(env, *verb, AQUA_LAB_PLATFORM="local")):
        assert chosen.returncode == 0 and chosen.stderr == "", chosen.stderr


# --------------------------------------------------------------------------------------------------
# c, d. --no_stream's help; validators' own words, without pydantic's prefix


def test_no_stream_says_what_it_does():
    shown = " ".join(run_cli("deployment", "chat", "--help").stdout.split())
    assert '--no_stream ask with "stream": false and print the answer\'s text once, when it is complete' in shown
    assert "Default: print tokens as they stream in" in shown


def test_a_rule_across_fields_is_worded_without_pydantics_prefix(env):
    with pytest.raises(ValidationError) as err:
        EvaluationSpec.model_validate(
            {
                "evaluation_source_id": "d",
                "evaluation_name": "e",
                "dataset_path": "oci://b@n/d.jsonl",
                "report_path": "oci://b@n/r/",
                "model_parameters": {},
                "log_id": "ocid1.log.oc1..l",
            }
        )
    (problem,) = InvalidInput.from_validation(err.value).problems
    assert (problem.field, problem.message) == (
        "body",
        "log_id needs log_group_id: pass the log group the log belongs to",
    )
    models = json.dumps([{"model_id": "microsoft/phi-2", "gpu_count": 1}])
    out = cli(env, "deployment", "validate", "--platform", "bundled", *_spec_args(models), "--access_log_id", "l")
    assert out.returncode == 2 and "Value error" not in out.stderr
    assert out.stderr.strip() == (
        "aqua-lab: error: access_log_id needs log_group_id: pass the log group the access and predict logs share"
    )


def _spec_args(models: str, shape: str = "VM.GPU.A10.2") -> list[str]:
    return ["--instance_shape", shape, "--display_name", "small", "--models", models]


# --------------------------------------------------------------------------------------------------
# e. an update cannot change its shape, so it is not told to


def test_an_update_that_needs_more_gpus_is_told_what_an_update_can_do():
    bundled = AquaLabService("bundled")
    spec = DeploymentSpec(
        models=[{"model_id": m, "gpu_count": 1} for m in ("microsoft/phi-2", "google/gemma-2b", FALCON)], **SPEC
    )
    with pytest.raises(InvalidInput) as err:
        bundled.update_deployment("ocid1.datasciencemodeldeployment.oc1..d", spec)
    (problem,) = err.value.problems
    assert problem.message == "the models need 3 GPUs but VM.GPU.A10.2 has 2"
    assert "choose a shape" not in problem.fix
    assert problem.fix.startswith(
        "lower some gpu_count (a lower --max-model-len in params may let a model fit on fewer), or deploy fewer or "
        "smaller models; for more GPUs create a new deployment on a larger shape: ['BM.GPU.A10.4'"
    )
    too_many = DeploymentSpec(models=[{"model_id": "microsoft/phi-2", "gpu_count": 4}], **SPEC)
    with pytest.raises(InvalidInput, match="use 1, 2 or create a new deployment on a larger shape"):
        bundled.update_deployment("ocid1.datasciencemodeldeployment.oc1..d", too_many)
    with pytest.raises(InvalidInput, match="or choose a shape with more GPUs"):  # a create still may
        bundled.validate(spec)


# --------------------------------------------------------------------------------------------------
# f. ADS's default stacked base name


def test_a_stacked_base_under_adss_default_name_is_accepted(env):
    models = json.dumps(
        [{"model_id": LLAMA, "gpu_count": 2, "fine_tune_weights": [{"model_id": "ocid1.datasciencemodel.oc1..ft"}]}]
    )
    args = [*_spec_args(models), "--deployment_type", "STACKED", "--platform", "bundled"]
    out = cli(env, "deployment", "payload", *args)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    members = payload["model_group"]["memberModelEntries"]["memberModelDetails"]
    assert {"modelId": LLAMA, "inferenceKey": LLAMA} in members and len(LLAMA) == 37  # what ADS sends
    assert f"served name {LLAMA!r} is 37 characters" in payload["warnings"][0]


# --------------------------------------------------------------------------------------------------
# g. --ocpus / --memory_in_gbs, as ADS takes them


def test_ocpus_and_memory_size_a_flex_shape_and_are_refused_elsewhere(env):
    models = json.dumps([{"model_id": "microsoft/phi-2", "gpu_count": 1}])
    flex = cli(
        env, "deployment", "payload", "--platform", "oci", *_spec_args(models, "VM.Standard.E4.Flex"),
        "--ocpus", "4", "--memory_in_gbs", "64",
    )  # fmt: skip
    assert flex.returncode == 0, flex.stderr
    instance = json.loads(flex.stdout)["model_deployment"]["modelDeploymentConfigurationDetails"][
        "infrastructureConfigurationDetails"
    ]["instanceConfiguration"]
    assert instance["modelDeploymentInstanceShapeConfigDetails"] == {"ocpus": 4.0, "memoryInGBs": 64.0}
    gpu = cli(env, "deployment", "validate", "--platform", "bundled", *_spec_args(models), "--ocpus", "4")
    assert gpu.returncode == 2 and gpu.stderr.strip() == (
        "aqua-lab: error: ocpus: only a flex shape takes it; VM.GPU.A10.2 is not a flex shape: its OCPUs and memory "
        "are fixed — leave them out, or choose a flex shape (a name ending in .Flex, e.g. VM.Standard.E4.Flex)"
    )
    local = cli(
        env, "deployment", "validate", "--platform", "local", "--display_name", "l", "--models",
        '[{"model_id": "any", "gpu_count": 1}]', "--memory_in_gbs", "8",
    )  # fmt: skip
    assert local.returncode == 2 and "memory_in_gbs: only a flex shape takes it; LOCAL." in local.stderr
    assert "is this machine" in local.stderr
    negative = cli(env, "deployment", "validate", "--platform", "bundled", *_spec_args(models), "--ocpus", "-1")
    assert negative.returncode == 2 and "--ocpus: Input should be greater than 0" in negative.stderr


# --------------------------------------------------------------------------------------------------
# h. a GPU count only estimated says so


def test_a_custom_model_without_a_config_is_deployed_with_a_warning_that_its_count_is_estimated(
    emulator, service, made
):
    emulator.put_object("b", "custom/config.txt", b"weights elsewhere")
    custom = emulator.add_model(
        "my-org/custom-7b",
        HOME,
        tags={"OCI_AQUA": "active"},
        custom={
            "artifact_location": f"oci://b@{emulator.namespace}/custom",
            "deployment-container": "odsc-vllm-serving",
        },
    )
    by_reference(emulator, custom, "b", "custom")
    created = service.create_deployment(
        DeploymentSpec(models=[{"model_id": custom, "gpu_count": 1}, {"model_id": FALCON, "gpu_count": 1}], **SPEC)
    )
    made.append(created.id)
    (warning,) = [w for w in created.warnings if "estimate" in w]
    assert warning.startswith(
        "models[0]: 'my-org/custom-7b' has no multi-model deployment config, so its GPU count (1 on VM.GPU.A10.2) "
        "was checked against an estimate from its size (≈7B parameters at 2 bytes each)"
    )
    assert "add a deployment_config.json with multi_model_deployment entries" in warning


# --------------------------------------------------------------------------------------------------
# i. list_shapes' `available`, as ADS's ComputeShapeSummary has it


def test_list_shapes_says_whether_each_shape_is_available(env):
    oci = json.loads(cli(env, "deployment", "list_shapes", "--platform", "oci", "--array").stdout)
    assert oci and all(s["available"] is True for s in oci)
    shipped = json.loads(cli(env, "deployment", "list_shapes", "--platform", "bundled", "--array").stdout)
    assert shipped and all(s["available"] is False for s in shipped)
    local = json.loads(cli(env, "deployment", "list_shapes", "--platform", "local", "--array").stdout)
    assert [s["available"] for s in local] == [True]
