"""The notebook widgets for issue 26 items 7-9 on the emulator: a deployment's model-group versions
with a confirmed rollback (its update type and reason shown, a refusal beside the button), and the
deploy form's OCI choices: a HETEROGENEOUS (bring-your-own-container) type with the container's
fields, OCPUs and memory on a CPU flex shape, each server refusal under the field it names."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.domain import DeploymentSpec  # noqa: E402
from aqua_lab.platforms.local import LocalPlatform  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402
from aqua_lab.widgets.deploy import DeploymentsPanel, DeployPanel  # noqa: E402
from aqua_lab.widgets.planning import GpuSplit, ModelPicker  # noqa: E402
from tests.test_oci_versions import FALCON, GEMMA, HOME, PHI, PROJECT, SERVICE  # noqa: E402, F401 - its place

pytestmark = [pytest.mark.oci, pytest.mark.service]
pytest_plugins = ["tests.helpers.oci_fixtures"]  # emulator, service, made

TRITON = "iad.ocir.io/emunamespace/triton:24.01"


def _two_versions(service, made) -> str:
    """A deployment whose group went gemma + phi (v1) → gemma + falcon (v2) by an update."""
    spec = DeploymentSpec(
        models=[{"model_id": GEMMA, "gpu_count": 1}, {"model_id": PHI, "gpu_count": 1}],
        instance_shape="VM.GPU.A10.2",
        display_name="versions widget",
    )
    deployment = service.create_deployment(service.validate(spec))
    made.append(deployment.id)
    service.wait(deployment.id, timeout=10, interval=0.01)
    update = spec.model_copy(
        update={"models": [{"model_id": GEMMA, "gpu_count": 1}, {"model_id": FALCON, "gpu_count": 1}]}
    )
    service.update_deployment(deployment.id, DeploymentSpec.model_validate(update.model_dump()))
    service.wait(deployment.id, timeout=10, interval=0.01)
    return deployment.id


def test_the_versions_view_rolls_back_after_a_confirm_and_shows_why_and_refusals(service, made, emulator):
    deployment_id = _two_versions(service, made)
    panel = DeploymentsPanel(service)
    assert panel.versions_button.layout.display is None  # OCI: the button is there
    panel.choice.value = deployment_id
    versions = panel.show_versions()
    # newest first, the live one marked, each member by name (its OCID in the tooltip)
    table = versions.table.value
    assert table.index("<td title=") < table.index("v2") < table.index("v1")
    assert "<b>live</b>" in table.split("v1")[0] and "<b>live</b>" not in table.split("v1")[1]
    assert f"title='{emulator.ids[FALCON]}'>{FALCON}</span>" in table and f">{PHI}</span>" in table
    assert list(versions.choice.options) == [(versions.choice.options[0][0], 1)]  # only an earlier one is offered

    # one click asks to confirm; nothing moved yet
    versions.rollback_button.click()
    assert "Click again to roll back to version 1" in versions.error.value
    assert [v.live for v in service.deployment_versions(deployment_id)] == [False, True]
    versions.rollback_button.click()
    assert "Rolled back to version 1: LIVE update" in versions.answer.value
    assert "rollback changes only the model group" in versions.answer.value
    assert [v.live for v in service.deployment_versions(deployment_id)] == [True, False]
    assert "<b>live</b>" in versions.table.value.split("v2")[1]  # the table read again: v1 is live now
    assert [o[1] for o in versions.choice.options] == [2]

    # another front moves it to v2 meanwhile: this view's offer of v2 is stale, refused beside the button
    service.rollback(deployment_id, 2)
    versions.rollback_button.click()
    versions.rollback_button.click()
    assert "is live already" in versions.error.value
    assert "<b>live</b>" in versions.table.value.split("v1")[0]  # read again: what the other front did shows
    assert [o[1] for o in versions.choice.options] == [1]
    assert versions.error in versions.action_row.children  # beside the button, not under the table


def test_other_platforms_have_no_versions_button(tmp_path):
    panel = DeploymentsPanel(AquaLabService(LocalPlatform(data_dir=tmp_path)))
    assert panel.versions_button.layout.display == "none"


def _form(service, *models: str, shape: str, sized: bool = False) -> DeployPanel:
    picker = ModelPicker(service)
    split = GpuSplit(service, picker)
    if sized:  # plans split a flex shape once sized, in the what-if row on OCI
        assert split.ocpus in split.what_if.children and split.memory_in_gbs in split.what_if.children
        split.ocpus.value, split.memory_in_gbs.value = 8, 128
    picker.pick(*models)
    split.override_shape.value = shape
    return DeployPanel(service, split, poll_s=0.01)


def test_the_deploy_form_makes_a_byoc_group_and_marks_the_fields_the_server_refuses(service, made, emulator):
    panel = _form(service, GEMMA, PHI, shape="VM.GPU.A10.2")
    assert panel.deployment_type.layout.display is None
    assert panel.byoc.box.layout.display == "none" and panel.flex_box.layout.display == "none"  # a GPU shape
    panel.deployment_type.value = "HETEROGENEOUS"
    assert panel.byoc.box.layout.display is None
    shown = [row.children[0] for row in panel.byoc.box.children[1:]]
    assert [c.description for c in shown] == [
        "Container",
        "Digest",
        "Entrypoint",
        "Cmd",
        "Server port",
        "Health port",
        "Env (JSON)",
    ]

    # no image: the server names container_image_uri, and the message is under that field
    panel.button.click()
    assert "none is given" in panel.errors["container_image_uri"].value
    assert "fix the fields marked above" in panel.status.value and panel.deployment is None
    panel.container.value = TRITON
    panel.byoc.digest.value = "sha256:zz"
    panel.button.click()
    assert panel.errors["container_image_uri"].value == ""
    assert "sha256" in panel.errors["image_digest"].value and panel.deployment is None

    panel.byoc.digest.value = "sha256:" + "a" * 64
    panel.byoc.entrypoint.value = "python\n-m\nserver"
    panel.byoc.server_port.value = panel.byoc.health_port.value = 5000
    panel.env.value = '{"WEB_CONCURRENCY": "1"}'
    panel.button.click()
    deployment = panel.wait(30)
    assert deployment is not None, panel.status.value
    made.append(deployment.id)
    assert deployment.state == "ACTIVE" and deployment.deployment_type == "HETEROGENEOUS", panel.status.value
    environment = emulator.state.deployments[deployment.id]["modelDeploymentConfigurationDetails"][
        "environmentConfigurationDetails"
    ]
    assert environment["image"] == TRITON and environment["imageDigest"] == "sha256:" + "a" * 64
    assert environment["entrypoint"] == ["python", "-m", "server"] and environment["serverPort"] == 5000
    assert environment["environmentVariables"]["WEB_CONCURRENCY"] == "1"


def test_the_deploy_form_sizes_a_cpu_flex_shape_and_marks_ocpus(service, made, emulator):
    panel = _form(service, GEMMA, PHI, shape="VM.Standard.E4.Flex", sized=True)
    assert panel.flex_box.layout.display is None and "VM.Standard.E4.Flex" in panel.flex_box.children[0].value
    for control in panel.split.overrides.children:
        control.value = 4
    panel.ocpus.value, panel.memory.value = "4", "128"
    panel.button.click()
    assert "the models need 8 OCPUs (their gpu_count) but 4 are asked" in panel.errors["ocpus"].value
    assert panel.deployment is None
    panel.ocpus.value = "8"
    panel.button.click()
    deployment = panel.wait(30)
    assert deployment is not None, panel.status.value
    made.append(deployment.id)
    assert deployment.state == "ACTIVE", panel.status.value
    instance = emulator.state.deployments[deployment.id]["modelDeploymentConfigurationDetails"][
        "infrastructureConfigurationDetails"
    ]["instanceConfiguration"]
    assert instance["modelDeploymentInstanceShapeConfigDetails"] == {"ocpus": 8.0, "memoryInGBs": 128.0}
    # a GPU shape has no OCPUs to ask for
    panel.split.override_shape.value = "VM.GPU.A10.2"
    assert panel.flex_box.layout.display == "none"
