"""Issue 26's heterogeneous (BYOC) groups, CPU flex shapes and plans as a new user met them on the
emulator: a validate that passes what a create refuses, an image OCI cannot pull, a flex size a plan
drops without a reason, advice an update cannot follow, and errors that name the wrong field."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.domain import DeploymentSpec  # noqa: E402
from aqua_lab.errors import InvalidInput, UpstreamError  # noqa: E402
from tests.helpers.cli import run_cli  # noqa: E402
from tests.test_oci_small import HOME, PROJECT, SERVICE, env, made  # noqa: E402, F401 - test_oci_small's place, fixtures

pytestmark = [pytest.mark.oci, pytest.mark.cli]
pytest_plugins = ["tests.helpers.oci_fixtures"]  # emulator, service

GEMMA, PHI = "google/gemma-2b", "microsoft/phi-2"
TRITON = "iad.ocir.io/ociodscdev/mms-ref-byoc:3.0"  # seed 002's BYOC image
FLEX = "VM.Standard.E4.Flex"
TWO = json.dumps([{"model_id": GEMMA, "gpu_count": 1, "model_name": "a"}, {"model_id": PHI, "gpu_count": 1}])


@pytest.fixture(scope="module")
def oci_env(env) -> dict[str, str]:  # noqa: F811
    """The CLI's environment on the emulator, with OCI chosen (as a user of these features sets it)."""
    return {**env, "AQUA_LAB_PLATFORM": "oci"}


def cli(environ: dict[str, str], *args: str):
    return run_cli(*args, env=environ)


def _local(tmp_path) -> dict[str, str]:
    """A user's environment on the local platform, in a data directory of the test's own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AQUA_LAB_")}
    return {**base, "AQUA_LAB_PLATFORM": "local", "AQUA_LAB_DATA_DIR": str(tmp_path)}


def _byoc(*extra: str, verb: str = "validate") -> tuple[str, ...]:
    byoc = "--instance_shape VM.GPU.A10.2 --display_name byoc --deployment_type HETEROGENEOUS".split()
    return ("deployment", verb, *byoc, "--models", TWO, *extra)


def _refused(on, **spec) -> list[str]:
    with pytest.raises(InvalidInput) as refused:
        on.validate(DeploymentSpec(**spec))
    return [str(p) for p in refused.value.problems]


# --------------------------------------------------------------------------------------------------
# 1. validate refuses what create refuses


def test_validate_refuses_a_heterogeneous_group_without_its_image_as_create_does(oci_env, service):  # noqa: F811
    validate, create = cli(oci_env, *_byoc()), cli(oci_env, *_byoc(verb="create"))
    for run in (validate, create):
        assert run.returncode == 2 and not run.stdout, run.stdout
        assert "container_image_uri: a HETEROGENEOUS deployment runs your own container" in run.stderr
    spec = {"models": json.loads(TWO), "instance_shape": "VM.GPU.A10.2", "display_name": "byoc"}
    assert any("container_image_uri" in p for p in _refused(service, **spec, deployment_type="HETEROGENEOUS"))


@pytest.mark.local
def test_a_local_validate_refuses_a_heterogeneous_group_as_its_create_does(tmp_path):
    here = _local(tmp_path)
    models = json.dumps([{"model_id": "smollm2-135m-instruct", "gpu_count": 1, "model_name": "a"}])
    byoc = ("--display_name", "byoc", "--deployment_type", "HETEROGENEOUS", "--container_image_uri", TRITON)
    for verb in ("validate", "create"):
        run = cli(here, "deployment", verb, "--models", models, *byoc)
        assert run.returncode == 2 and not run.stdout, run.stdout
        assert "deployment_type: the local platform runs its own model servers, not your container" in run.stderr


# --------------------------------------------------------------------------------------------------
# 2. a BYOC image is an OCIR path


@pytest.mark.parametrize("image", ["docker.io/x:1", "tritonserver", "dsmc://odsc-vllm-serving:0.8.1.2"])
def test_an_image_that_is_not_in_ocir_is_refused_naming_the_form_oci_takes(oci_env, image):
    run = cli(oci_env, *_byoc("--container_image_uri", image, verb="create"))
    assert run.returncode == 2 and not run.stdout
    assert (
        "container_image_uri: not an OCIR path — use <region>.ocir.io/<namespace>/<repo>:<tag> (or @sha256:…)"
        in run.stderr
    )


def _on_image(image: str) -> DeploymentSpec:
    return DeploymentSpec(
        models=json.loads(TWO),
        instance_shape="VM.GPU.A10.2",
        display_name="byoc",
        deployment_type="HETEROGENEOUS",
        container_image_uri=image,
    )


def test_ocir_images_by_tag_or_digest_pass(service):  # noqa: F811
    digest = "sha256:" + "ab" * 32
    for image in (TRITON, f"iad.ocir.io/ns/team/triton@{digest}", "us-ashburn-1.ocir.io/ns/repo:24.05-py3"):
        assert service.validate(_on_image(image)).spec.container_image_uri == image


def test_the_emulator_refuses_a_heterogeneous_group_on_an_image_outside_ocir(service, made):  # noqa: F811
    """What OCI checks, so the check above is not our reading alone: the platform's own request, its
    image swapped after validation."""
    validated = service.validate(_on_image(TRITON))
    validated.spec = validated.spec.model_copy(update={"container_image_uri": "docker.io/x:1"})
    with pytest.raises(UpstreamError) as refused:
        made.append(service.platform.create_deployment(validated).id)
    assert "a container image must be in OCIR" in str(refused.value)


# --------------------------------------------------------------------------------------------------
# 6. an image digest in words, not a regular expression


def test_a_bad_image_digest_says_the_form_to_give(oci_env):
    run = cli(oci_env, *_byoc("--container_image_uri", TRITON, "--image_digest", "abc"))
    assert run.returncode == 2
    assert "--image_digest: give sha256:<64 hex digits>, not 'abc'" in run.stderr
    assert "pattern" not in run.stderr


# --------------------------------------------------------------------------------------------------
# 3. a flex size a plan cannot take says why, per shape; a size where no flex shape is planned is refused


def _flex_plan(oci_env, *sized: str):
    return cli(oci_env, "plan", "--model_ids", f"{GEMMA},{PHI}", "--shape", FLEX, *sized)


def test_a_plan_beyond_a_flex_shapes_size_says_so_for_that_shape(oci_env, service):  # noqa: F811
    table = _flex_plan(oci_env, "--ocpus", "100")
    assert table.returncode == 0, table.stderr
    assert f"{FLEX}: ocpus: 100 OCPUs but {FLEX} offers at most 64" in table.stdout
    refused = json.loads(_flex_plan(oci_env, "--memory_in_gbs", "2000", "--json").stdout)
    assert refused["incompatible_shapes"][FLEX] == [
        f"memory_in_gbs: 2000 GB but {FLEX} offers at most 1024 GB — ask for less memory"
    ]
    # what REST's POST plans runs: the GPU shapes planned, the flex shape with its reason
    from aqua_lab.domain import CapacityInputs

    plan = service.plan([GEMMA, PHI], capacity=CapacityInputs(ocpus=100))
    assert "VM.GPU.A10.2" in plan.gpu_allocation
    assert plan.incompatible_shapes[FLEX][0].startswith("ocpus: 100 OCPUs but")


def test_a_plan_sized_in_ocpus_on_a_shape_that_is_not_flex_is_refused_as_validate_does(oci_env, tmp_path):
    gpu = cli(oci_env, "plan", "--model_ids", GEMMA, "--shape", "VM.GPU.A10.2", "--ocpus", "8")
    assert gpu.returncode == 2 and not gpu.stdout
    assert "ocpus: only a flex shape takes it; VM.GPU.A10.2 is not a flex shape" in gpu.stderr
    local = cli(_local(tmp_path), "plan", "--model_ids", "smollm2-135m-instruct", "--memory_in_gbs", "8")
    assert local.returncode == 2 and not local.stdout
    assert "memory_in_gbs: only a flex shape takes it; LOCAL." in local.stderr


# --------------------------------------------------------------------------------------------------
# 4. an update is told what an update can do


def _with_models(spec: DeploymentSpec, models: list[dict]) -> DeploymentSpec:
    return DeploymentSpec(**{**spec.model_dump(exclude_none=True), "models": models})


def test_an_update_beyond_its_deployments_ocpus_gets_advice_it_can_follow(service, made):  # noqa: F811
    spec = DeploymentSpec(
        models=[{"model_id": GEMMA, "gpu_count": 4, "model_name": "g"}],
        instance_shape=FLEX,
        display_name="flex",
        ocpus=8,
        memory_in_gbs=128,
    )
    created = service.create_deployment(spec)
    made.append(created.id)
    for count, bigger in ((80, 64), (16, 16)):
        wanted = _with_models(spec, [{"model_id": GEMMA, "gpu_count": count, "model_name": "g"}])
        with pytest.raises(InvalidInput) as refused:
            service.update_deployment(created.id, wanted)
        ocpus = next(p for p in refused.value.problems if p.field == "ocpus")
        assert ocpus.fix.startswith("lower some gpu_count so they add up to at most 8 (an update keeps")
        assert (
            f"create a new deployment with --ocpus {bigger} (REST: ocpus; {FLEX} offers at most 64 OCPUs)" in ocpus.fix
        )
        assert "pass --ocpus" not in str(refused.value)
        assert "larger shape" not in str(refused.value)  # a flex shape grows by OCPUs, not by another shape
    # a create beyond the shape: no --ocpus the shape cannot give
    too_many = _with_models(spec, [{"model_id": GEMMA, "gpu_count": 128, "model_name": "g"}])
    with pytest.raises(InvalidInput) as refused:
        service.validate(too_many)
    ocpus = next(p for p in refused.value.problems if p.field == "ocpus")
    assert "--ocpus 128" not in ocpus.fix and f"{FLEX} offers at most 64 OCPUs" in ocpus.fix


# --------------------------------------------------------------------------------------------------
# 5. too little memory on a flex shape is memory_in_gbs's fault, said in CPU words


def test_a_flex_size_short_of_memory_names_memory_in_gbs_and_the_least_that_fits(oci_env):
    models = json.dumps([{"model_id": GEMMA, "gpu_count": 4}, {"model_id": PHI, "gpu_count": 4}])
    sized = ("--instance_shape", FLEX, "--ocpus", "8", "--memory_in_gbs", "8")
    run = cli(oci_env, "deployment", "validate", "--display_name", "x", "--models", models, *sized)
    assert run.returncode == 2
    assert "memory_in_gbs: model 'microsoft/phi-2' does not fit in 8 GB of memory (8 OCPUs)" in run.stderr
    assert f"raise memory_in_gbs to at least 10 GB ({FLEX} offers up to 1024 GB)" in run.stderr
    assert "models[1].model_id" not in run.stderr and "choose a shape" not in run.stderr


def test_a_flex_plan_short_of_memory_speaks_of_memory_not_gpus(oci_env):
    plan = _flex_plan(oci_env, "--ocpus", "8", "--memory_in_gbs", "2")
    assert plan.returncode == 0, plan.stderr
    assert "No shape fits: The selected models do not fit the OCPUs and memory asked of the flex shape" in plan.stdout
    assert "does not fit in 2 GB of memory (8 OCPUs): weights need 5.0 GB plus" in plan.stdout
    for gpu_words in ("tensor-parallel", "GPU allocation", "GB per OCPU", "OCPUs of 0.25 GB"):
        assert gpu_words not in plan.stdout


# --------------------------------------------------------------------------------------------------
# 7. each front's spelling: the CLI's options, REST's JSON fields


def test_chat_with_a_name_the_deployment_does_not_serve_names_the_cli_option(oci_env, service, made):  # noqa: F811
    created = service.create_deployment(
        DeploymentSpec(models=json.loads(TWO), instance_shape="VM.GPU.A10.2", display_name="two")
    )
    made.append(created.id)
    service.wait(created.id, timeout=10, interval=0.01)
    ask = ("deployment", "chat", "--model_deployment_id", created.id, "--prompt", "hi", "--model_name", "nope")
    run = cli(oci_env, *ask)
    assert run.returncode == 2 and "--model_name: 'nope' is not served by" in run.stderr
    assert "error: model:" not in run.stderr


def test_a_heterogeneous_refusal_names_the_rest_field_too(service):  # noqa: F811
    spec = {"models": json.loads(TWO), "instance_shape": "VM.GPU.A10.2", "display_name": "byoc"}
    (no_image,) = [p for p in _refused(service, **spec, deployment_type="HETEROGENEOUS") if "own container" in p]
    assert "pass --container_image_uri (REST: container_image_uri) <region>.ocir.io/" in no_image


# --------------------------------------------------------------------------------------------------
# 8. the same model twice is two rows with two letters


@pytest.mark.local
def test_a_plan_of_the_same_model_twice_labels_each_copy(tmp_path):
    here = _local(tmp_path)
    run = cli(here, "plan", "--model_ids", "smollm2-135m-instruct,smollm2-135m-instruct")
    assert run.returncode == 0, run.stderr
    rows = [line.split()[0] for line in run.stdout.splitlines() if "SmolLM2-135M-Instruct" in line]
    assert rows == ["A", "B"]
    assert "|A|B|" in run.stdout


def test_a_flex_plan_of_the_same_model_twice_labels_each_copy(oci_env):
    run = cli(
        oci_env, "plan", "--model_ids", f"{GEMMA},{GEMMA}", "--shape", FLEX, "--ocpus", "8", "--memory_in_gbs", "128"
    )
    assert run.returncode == 0, run.stderr
    assert "OCPUs |A|A|A|A|B|B|B|B|" in run.stdout
    assert [line.split()[0] for line in run.stdout.splitlines() if f" {GEMMA} " in line] == ["A", "B"]
