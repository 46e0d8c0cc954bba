"""One rule for which model a model string means (``Deployment.names_meant``): a served name, a model
group member's inference key, or a model's OCID — the same for chat, compare and the ``model-key``
header OCI routes a heterogeneous group's ``/predict`` by."""

from __future__ import annotations

import asyncio
import json

import pytest

from aqua_lab.domain import CompareRequest, Deployment, DeploymentSpec
from aqua_lab.errors import InvalidInput
from aqua_lab.platforms.oci.byoc import model_key

# its import sets the SDK's retry variables; its place (HOME, SERVICE, PROJECT) is where the fixtures work
from tests.test_oci_versions import GEMMA, HOME, PHI, PROJECT, SERVICE  # noqa: F401

pytestmark = [pytest.mark.oci, pytest.mark.inference]
pytest_plugins = ["tests.helpers.oci_fixtures"]  # emulator, service, made

GROUP = Deployment(
    id="ocid1.datasciencemodeldeployment.oc1..group",
    display_name="group",
    platform="oci",
    state="ACTIVE",
    instance_shape="VM.GPU.A10.2",
    models=[
        {"model_id": "ocid1.datasciencemodel.oc1..gemma", "model_name": "gemma", "gpu_count": 1, "inference_key": "g"},
        {"model_id": "ocid1.datasciencemodel.oc1..phi", "model_name": "phi", "gpu_count": 1},
        {"model_id": "ocid1.datasciencemodel.oc1..phi", "model_name": "phi-again", "gpu_count": 1},
    ],
)


def test_a_name_a_key_and_an_ocid_mean_the_same_member_everywhere():
    assert GROUP.names_meant("gemma") == GROUP.names_meant("g") == ["gemma"]
    assert GROUP.names_meant("ocid1.datasciencemodel.oc1..gemma") == ["gemma"]
    assert GROUP.names_meant("ocid1.datasciencemodel.oc1..phi") == ["phi", "phi-again"]
    assert GROUP.names_meant("nope") == []
    # the header OCI routes by: the member's key, whichever way the body names it
    for given in ("gemma", "g", "ocid1.datasciencemodel.oc1..gemma"):
        assert model_key(GROUP, json.dumps({"model": given}).encode()) == "g"
    assert model_key(GROUP, b'{"model": "phi"}') == "phi"  # no key: its served name
    assert model_key(GROUP, b"{}") is None


def _compare(service, deployment_id: str, models: list[str]) -> list[dict]:
    async def run():
        request = CompareRequest(models=models, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        return [e async for e in service.compare(deployment_id, request)]

    return asyncio.run(run())


def test_compare_takes_an_inference_key_and_an_ocid_as_chat_does(emulator, service, made):
    models = [
        {"model_id": GEMMA, "gpu_count": 1, "model_name": "gemma", "inference_key": "gem-key"},
        {"model_id": PHI, "gpu_count": 1, "model_name": "phi"},
    ]
    spec = DeploymentSpec(models=models, instance_shape="VM.GPU.A10.2", display_name="addressing")
    created = service.create_deployment(spec)
    made.append(created.id)
    assert service.wait(created.id, timeout=10, interval=0.01).state == "ACTIVE"

    events = _compare(service, created.id, ["gem-key", emulator.ids[PHI]])  # before: "'gem-key' not served"
    assert {e["model"] for e in events if e["type"] == "done"} == {"gemma", "phi"}, events
    # a key and the name it stands for are one model, compared once
    assert [e["model"] for e in _compare(service, created.id, ["gem-key", "gemma"]) if e["type"] == "done"] == ["gemma"]
    with pytest.raises(InvalidInput, match=r"'other-key' not served by .* use names from \['gemma', 'phi'\]"):
        _compare(service, created.id, ["other-key"])
