"""Interop checked by ADS's own code (issue 26, item 5): real ``oracle-ads[aqua]==2.16.1`` against the
emulator, on what aqua_lab made and the other way round.  Needs the ``ads-reference`` extra; deselected
unless ``-m ads_reference`` is given.  Each ADS call runs in its own process: ADS reads its endpoint
and compartments from the environment once, at import."""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.domain import ChatRequest, DeploymentSpec, EvaluationSpec  # noqa: E402
from tests.test_oci_interop import FALCON, GEMMA, HOME, PHI, PROJECT, SERVICE, _deploy, _multi  # noqa: E402, F401

pytestmark = [pytest.mark.ads_reference, pytest.mark.oci]
pytest_plugins = ["tests.helpers.oci_fixtures"]  # in test_oci_interop's place: HOME, SERVICE, PROJECT


def test_ads_lists_shapes_and_plans_on_the_emulator(emulator, ads):
    shapes = {s["name"] for s in ads("list_shapes", compartment_id=HOME)}
    assert {"VM.GPU.A10.2", "BM.GPU.A10.4"} <= shapes
    config = ads("get_multimodel_deployment_config", model_ids=[emulator.ids[GEMMA], emulator.ids[PHI]])
    assert "VM.GPU.A10.2" in config["gpu_allocation"]


def test_a_deployment_ads_made_is_read_and_chatted_by_aqua_lab(emulator, service, ads, made):
    created = ads(
        "create",
        instance_shape="VM.GPU.A10.2",
        display_name="made by ADS",
        compartment_id=HOME,
        project_id=PROJECT,
        models=[
            {"model_id": emulator.ids[GEMMA], "gpu_count": 1, "model_name": "gemma"},
            {"model_id": emulator.ids[PHI], "gpu_count": 1, "model_name": "phi"},
        ],
    )
    made.append(created["id"])
    deployment = service.wait(created["id"], timeout=10, interval=0.01)
    assert deployment.state == "ACTIVE" and deployment.served_names() == ["gemma", "phi"]
    request = ChatRequest(model="phi", messages=[{"role": "user", "content": "hello"}], stream=False, max_tokens=4)
    answer = __import__("asyncio").run(service.chat(created["id"], request))
    assert answer["choices"][0]["message"]["content"] == "phi answers: hello"


def test_ads_reads_aqua_lab_multi_deployments_after_an_update_and_a_cleanup(emulator, service, ads, made):
    deployment_id = _deploy(
        service, made, _multi("aqua_lab multi", (emulator.ids[GEMMA], "gemma"), (emulator.ids[FALCON], "falcon"))
    )
    got = ads("get", model_deployment_id=deployment_id)  # before: AttributeError on categoryLogDetails
    assert [m["model_name"] for m in got["models"]] == ["gemma", "falcon"]
    service.update_deployment(
        deployment_id, _multi("aqua_lab multi", (emulator.ids[GEMMA], "gemma"), (emulator.ids[PHI], "phi"))
    )
    service.wait(deployment_id, timeout=10, interval=0.01)
    for group in service.list_model_groups():
        if not group["in_use_by"]:
            service.delete_model_group(group["id"])
    got = ads("get", model_deployment_id=deployment_id)  # before: falcon, then a 404 on the deleted group
    assert [m["model_name"] for m in got["models"]] == ["gemma", "phi"]
    assert deployment_id in [d["id"] for d in ads("list", compartment_id=HOME)]


def test_ads_reads_an_aqua_lab_stacked_deployment_but_lists_no_models_for_it(emulator, service, ads, made):
    base = emulator.ids["meta-llama/Meta-Llama-3.1-8B-Instruct"]
    adapter = emulator.add_model(
        "adsref-lora",
        HOME,
        tags={"OCI_AQUA": "active", "aqua_fine_tuned_model": f"{base}#Meta-Llama-3.1-8B-Instruct"},
        custom={"artifact_location": f"oci://ft@{emulator.namespace}/ft/adsref", "fine_tune_source": base},
    )
    spec = DeploymentSpec(
        models=[
            {
                "model_id": base,
                "gpu_count": 2,
                "model_name": "base",
                "fine_tune_weights": [{"model_id": adapter, "model_name": "lora"}],
            }
        ],
        instance_shape="BM.GPU.A10.4",
        display_name="aqua_lab stacked",
        deployment_type="STACKED",
    )
    deployment_id = _deploy(service, made, spec)
    got = ads("get", model_deployment_id=deployment_id)
    # ADS 2.16.1 fills ``models`` only for deployments tagged aqua_multimodel (its own stacked ones too):
    # the live group is what it shows, which lists the base and the adapter as members
    assert got["model_id"] == emulator.state.deployments[deployment_id]["freeformTags"]["aqua_model_id"]
    assert got["models"] == [] and got["tags"]["aqua_stacked_model"] == "true"


def test_ads_loads_the_metrics_and_report_of_an_aqua_lab_evaluation(emulator, service, ads, made):
    deployment_id = _deploy(
        service, made, _multi("evaluated", (emulator.ids[GEMMA], "gemma"), (emulator.ids[PHI], "phi"))
    )
    emulator.put_object("data", "adsref.jsonl", b'{"prompt": "Say hi", "completion": "hi"}\n')
    spec = EvaluationSpec.model_validate(
        {
            "evaluation_source_id": deployment_id,
            "evaluation_name": "adsref",
            "dataset_path": f"oci://data@{emulator.namespace}/adsref.jsonl",
            "report_path": f"oci://data@{emulator.namespace}/reports/",
            "model_parameters": {"model": "phi", "max_tokens": 8},
            "metrics": [{"name": "rouge", "args": {}}],
        }
    )
    evaluation = service.create_evaluation(spec)
    deadline = time.monotonic() + 60
    while service.get_evaluation(evaluation.id).state in ("ACCEPTED", "IN_PROGRESS") and time.monotonic() < deadline:
        time.sleep(0.1)
    done = service.get_evaluation(evaluation.id)
    assert done.state == "SUCCEEDED", done.details
    metrics = ads("load_metrics", eval_id=evaluation.id)  # before: ValidationError (grade None)
    assert [(m["key"], m["name"]) for m in metrics["metric_results"]] == [("rouge", "ROUGE (rouge-score, F-measure)")]
    [summary] = metrics["metric_summary_result"]
    assert summary["metric"] == "rouge" and summary["score"].startswith("Median rougeL") and summary["grade"]
