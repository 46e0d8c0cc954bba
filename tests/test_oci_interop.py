"""What aqua_lab writes on OCI, read the way AQUA and ADS read it (issue 26, items 1–5), against the
emulator through the real ``oci`` SDK.  The real-ADS counterpart is tests/test_ads_reference.py."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

import oci  # noqa: E402

from aqua_lab.domain import DeploymentSpec  # noqa: E402
from aqua_lab.errors import Conflict  # noqa: E402
from aqua_lab.evaluation import report, runner  # noqa: E402
from aqua_lab.evaluation.datasets import Row  # noqa: E402
from aqua_lab.evaluation.metrics import check_metrics  # noqa: E402

pytestmark = pytest.mark.oci
pytest_plugins = ["tests.helpers.oci_fixtures"]  # emulator, oci_config, service, made, cli

HOME = "ocid1.compartment.oc1..interop"
ELSEWHERE = "ocid1.compartment.oc1..elsewhere"
SERVICE = "ocid1.compartment.oc1..interopservice"
PROJECT = "ocid1.datascienceproject.oc1..interop"
GEMMA, PHI, FALCON = "google/gemma-2b", "microsoft/phi-2", "tiiuae/falcon-7b"


def _sdk(emulator, oci_config):
    config = oci.config.from_file(str(oci_config))
    return oci.data_science.DataScienceClient(
        config,
        service_endpoint=emulator.url,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )


def _multi(name: str, *models: tuple[str, str], **extra) -> DeploymentSpec:
    return DeploymentSpec(
        models=[{"model_id": m, "gpu_count": 1, "model_name": n} for m, n in models],
        instance_shape="VM.GPU.A10.2",
        display_name=name,
        **extra,
    )


def _deploy(service, made, spec) -> str:
    deployment = service.create_deployment(spec)
    made.append(deployment.id)
    assert service.wait(deployment.id, timeout=10, interval=0.01).state == "ACTIVE"
    return deployment.id


def _ads_models(sdk, deployment_id) -> list[str]:
    """ADS's ``get``: the deployment's ``aqua_model_id`` tag → that group's ``multi_model_metadata``."""
    md = sdk.get_model_deployment(deployment_id).data
    group = sdk.get_model_group(md.freeform_tags["aqua_model_id"]).data
    meta = {m.key: m.value for m in group.model_group_details.custom_metadata_list}
    return [ref["model_name"] for ref in json.loads(meta["multi_model_metadata"])]


# --------------------------------------------------------------------------------------------------
# item 1: categoryLogDetails


def test_a_deployment_without_log_options_sends_an_empty_category_log_details_as_ads_does(
    emulator, oci_config, service, made
):
    deployment_id = _deploy(
        service, made, _multi("no logs", (emulator.ids[GEMMA], "gemma"), (emulator.ids[PHI], "phi"))
    )
    assert emulator.state.deployments[deployment_id]["categoryLogDetails"] == {}
    md = _sdk(emulator, oci_config).get_model_deployment(deployment_id).data
    # what ADS's get() reads; None here was its AttributeError: 'NoneType' object has no attribute 'access'
    assert md.category_log_details is not None and md.category_log_details.access is None

    # and a deployment made before (no categoryLogDetails at all) is still read
    del emulator.state.deployments[deployment_id]["categoryLogDetails"]
    service.clear_cache()
    got = service.get_deployment(deployment_id)
    assert got.state == "ACTIVE" and got.access_log_id is None and got.served_names() == ["gemma", "phi"]


# --------------------------------------------------------------------------------------------------
# item 2: tags follow the live group; groups in use are never deleted


def test_an_update_moves_the_aqua_model_id_tag_to_the_new_group_and_orphans_only_the_old(
    emulator, oci_config, service, made
):
    sdk = _sdk(emulator, oci_config)
    deployment_id = _deploy(
        service, made, _multi("to update", (emulator.ids[GEMMA], "gemma"), (emulator.ids[FALCON], "falcon"))
    )
    old_group = emulator.state.deployments[deployment_id]["freeformTags"]["aqua_model_id"]
    service.update_deployment(
        deployment_id, _multi("to update", (emulator.ids[GEMMA], "gemma"), (emulator.ids[PHI], "phi"))
    )
    # during the update the tag already names the new group, which is therefore in use, not an orphan
    tags = emulator.state.deployments[deployment_id]["freeformTags"]
    assert tags["aqua_model_id"] != old_group and tags["OCI_AQUA"] == "active" and tags["aqua_multimodel"] == "true"
    groups = {g["id"]: g["in_use_by"] for g in service.list_model_groups()}
    assert groups[tags["aqua_model_id"]] == [deployment_id]
    assert service.wait(deployment_id, timeout=10, interval=0.01).state == "ACTIVE"

    live = emulator.state.deployments[deployment_id]["modelDeploymentConfigurationDetails"]
    assert live["modelGroupConfigurationDetails"]["modelGroupId"] == tags["aqua_model_id"]
    assert _ads_models(sdk, deployment_id) == ["gemma", "phi"]  # before: gemma, falcon (the old group)
    orphans = [g["id"] for g in service.list_model_groups() if not g["in_use_by"]]
    assert old_group in orphans and tags["aqua_model_id"] not in orphans
    for group_id in orphans:
        service.delete_model_group(group_id)
    assert _ads_models(sdk, deployment_id) == ["gemma", "phi"]  # before: 404 get_model_group


def test_a_stacked_update_moves_the_tag_too(emulator, service, made):
    base = emulator.ids["meta-llama/Meta-Llama-3.1-8B-Instruct"]
    adapters = [
        emulator.add_model(
            f"interop-lora-{i}",
            HOME,
            tags={"OCI_AQUA": "active", "aqua_fine_tuned_model": f"{base}#Meta-Llama-3.1-8B-Instruct"},
            custom={"artifact_location": f"oci://ft@{emulator.namespace}/ft/{i}", "fine_tune_source": base},
        )
        for i in (1, 2)
    ]

    def stacked(*loras: str) -> DeploymentSpec:
        weights = [{"model_id": a, "model_name": f"lora-{i}"} for i, a in enumerate(loras, 1)]
        return DeploymentSpec(
            models=[{"model_id": base, "gpu_count": 2, "model_name": "base", "fine_tune_weights": weights}],
            instance_shape="BM.GPU.A10.4",
            display_name="stacked interop",
            deployment_type="STACKED",
        )

    deployment_id = _deploy(service, made, stacked(adapters[0]))
    old_group = emulator.state.deployments[deployment_id]["freeformTags"]["aqua_model_id"]
    service.update_deployment(deployment_id, stacked(*adapters))
    service.wait(deployment_id, timeout=10, interval=0.01)
    d = emulator.state.deployments[deployment_id]
    new_group = d["modelDeploymentConfigurationDetails"]["modelGroupConfigurationDetails"]["modelGroupId"]
    assert new_group != old_group and d["freeformTags"]["aqua_model_id"] == new_group
    assert d["freeformTags"]["aqua_stacked_model"] == "true"


def test_a_group_two_deployments_share_is_kept_until_neither_uses_it(emulator, oci_config, service, made, cli):
    first = _deploy(service, made, _multi("shares a group", (emulator.ids[GEMMA], "gemma"), (emulator.ids[PHI], "phi")))
    group_id = emulator.state.deployments[first]["freeformTags"]["aqua_model_id"]
    # a second deployment of the same group, in another compartment (OCI deploys a group many times)
    sdk = _sdk(emulator, oci_config)
    body = {k: v for k, v in emulator.state.deployments[first].items() if not k.startswith("_")}
    body = {k: body[k] for k in ("displayName", "projectId", "modelDeploymentConfigurationDetails", "freeformTags")}
    body["compartmentId"] = ELSEWHERE
    details = sdk.base_client.deserialize_response_data(json.dumps(body).encode(), "CreateModelDeploymentDetails")
    second = sdk.create_model_deployment(details).data.id
    made.append(second)

    with pytest.raises(Conflict, match=f"still used by deployment {first}"):
        service.delete_model_group(group_id)

    # the other user is in a compartment aqua_lab was not told of: OCI's own refusal guards it
    out = cli("deployment", "delete", "--model_deployment_id", first, "--with_model_group", "--timeout", "30")
    assert out.returncode != 0 and f"model group {group_id} is kept" in out.stderr and second in out.stderr
    assert emulator.state.groups[group_id]["lifecycleState"] == "ACTIVE"
    other = service.get_deployment(second)
    assert other.state == "ACTIVE" and other.served_names() == ["gemma", "phi"]  # before: the group was gone

    # the emulator refuses as OCI does, whoever asks
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        sdk.delete_model_group(group_id)
    assert refused.value.status == 409 and second in refused.value.message


# --------------------------------------------------------------------------------------------------
# item 3: report.json as the AQUA container writes it

#: ADS's own fixture (tests/unitary/with_extras/aqua/test_data/valid_eval_artifact/report.json)
ADS_REPORT = {
    "data": [],
    "metric_results": {"metric1": {"description": "This is a description.", "key": "metric1", "name": "METRIC 1"}},
    "metric_summary_result": [
        {
            "grade": "Poor, There is significant room for improvement, either in the model's ability to generalize "
            "from its training data or in the data itself (e.g., it might be imbalanced or noisy)",
            "metric": "METRIC 1",
            "score": "Median F1: 0.598 (SD: 0.018)",
        }
    ],
}


def _shape(value):
    """The JSON types of a value, recursively (dict keys kept, list items by their first)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_report_json_has_every_field_of_the_aqua_containers_report_with_ours_beside():
    rows = [Row(0, "Say hi", "hello there"), Row(1, "Say bye", "goodbye now")]
    done = {i: runner.Prediction(index=i, model="m", prediction=p) for i, p in enumerate(["hello there", "no"])}
    scores = runner.score_model(rows, "m", done, check_metrics([{"name": "rouge"}, {"name": "perplexity_score"}]))
    r = report.model_report(rows, scores, {"evaluation_id": "ev1"})
    expected = _shape(ADS_REPORT)
    for entry in r["metric_results"].values():
        assert {k: _shape(entry[k]) for k in expected["metric_results"]["metric1"]} == {
            "description": "str",
            "key": "str",
            "name": "str",
        }
    for line in r["metric_summary_result"]:  # before: "grade": None, which ADS's load_metrics refuses
        assert {k: _shape(line[k]) for k in expected["metric_summary_result"][0]} == {
            "grade": "str",
            "metric": "str",
            "score": "str",
        }
    rouge = r["metric_results"]["rouge"]
    assert rouge["key"] == "rouge" and rouge["name"] == rouge["label"] and rouge["description"]
    assert "keys" in rouge and "summary" in rouge  # aqua_lab's own fields stay beside
    grades = {line["metric"]: line["grade"] for line in r["metric_summary_result"]}
    assert grades["rouge"].split(",")[0] in ("Excellent", "Good", "Fair", "Poor")
    assert grades["perplexity_score"].startswith("Not graded")


# --------------------------------------------------------------------------------------------------
# item 4: a create whose read-back fails; retry tokens


def test_a_create_whose_read_back_fails_prints_its_ocid_and_how_to_follow_it(emulator, service, made, cli):
    before = set(emulator.state.deployments)
    emulator.inject(r"/modelDeployments/ocid1", status=500, method="GET", count=1000)
    try:
        out = cli(
            "deployment",
            "create",
            "--instance_shape",
            "VM.GPU.A10.2",
            "--display_name",
            "read back fails",
            "--models",
            json.dumps([{"model_id": GEMMA, "gpu_count": 1}, {"model_id": PHI, "gpu_count": 1}]),
        )
    finally:
        emulator.faults.clear()
    [created] = set(emulator.state.deployments) - before  # one deployment, not two
    made.append(created)
    assert out.returncode == 3, out.stderr  # before: 2, empty stdout
    assert json.loads(out.stdout)["id"] == created
    assert f"deployment {created} was created (CREATING)" in out.stderr
    assert f"aqua-lab deployment get --model_deployment_id {created}" in out.stderr
    # every create sent a retry token (the group's and the deployment's)
    paths = {path for path, _ in emulator.state.retry_tokens}
    assert {"/20190101/modelGroups", "/20190101/modelDeployments"} <= paths


def test_the_emulator_answers_a_create_sent_again_with_its_token_with_the_same_resource(emulator, oci_config):
    sdk = _sdk(emulator, oci_config)
    details = oci.data_science.models.CreateModelDetails(
        compartment_id=HOME, project_id=PROJECT, display_name="once only"
    )
    first = sdk.create_model(details, opc_retry_token="token-1").data
    again = sdk.create_model(details, opc_retry_token="token-1").data
    assert again.id == first.id
    assert [m for m in emulator.state.models.values() if m["displayName"] == "once only"] != []
    assert sum(m["displayName"] == "once only" for m in emulator.state.models.values()) == 1
    details.display_name = "something else"
    with pytest.raises(oci.exceptions.ServiceError) as conflict:
        sdk.create_model(details, opc_retry_token="token-1")
    assert conflict.value.status == 409 and "retry token" in conflict.value.message


# --------------------------------------------------------------------------------------------------
# item 5: the emulator answers what ADS asks


def test_the_emulator_answers_the_calls_ads_makes_besides_deployments(emulator, oci_config, service, made):
    sdk = _sdk(emulator, oci_config)
    containers = {c.family_name: c for c in sdk.list_containers().data}
    vllm = containers["odsc-vllm-serving"]
    assert vllm.is_latest and "OTHER" in vllm.usages  # ADS's multi-model create takes MULTI_MODEL or OTHER
    assert vllm.workload_configuration_details_list[0].cmd.startswith("--served-model-name")
    assert "EVALUATION" in containers["odsc-llm-evaluate"].usages

    deployment_id = _deploy(service, made, _multi("work requests", (emulator.ids[GEMMA], "gemma")))
    [wr] = sdk.list_work_requests(HOME, resource_id=deployment_id).data
    logs = [entry.message for entry in sdk.list_work_request_logs(wr.id).data]
    assert logs == [
        "MODEL_DEPLOYMENT_CREATE accepted",
        "MODEL_DEPLOYMENT_CREATE in progress",
        "MODEL_DEPLOYMENT_CREATE succeeded",
    ]
    assert sdk.list_work_request_errors(wr.id).data == []

    search = oci.resource_search.ResourceSearchClient(
        oci.config.from_file(str(oci_config)),
        service_endpoint=emulator.url,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )
    where = f"compartmentId = '{SERVICE}' && freeformTags.key = 'aqua_service_model'"
    query = f"query datasciencemodel resources where {where}"
    found = search.search_resources(oci.resource_search.models.StructuredSearchDetails(query=query)).data.items
    assert {r.identifier for r in found} == set(emulator.ids.values())
    assert {r.resource_type for r in found} == {"DataScienceModel"}

    # service models are registered by reference, their artifact named as ADS tells a JSON from a zip
    model_id = emulator.ids[GEMMA]
    headers = sdk.head_model_artifact(model_id).headers
    assert headers["Content-Disposition"] == f"attachment; filename={model_id}.json"
    description = json.loads(sdk.get_model_artifact_content(model_id).data.content)
    assert description["type"] == "modelOSSReferenceDescription" and description["models"][0]["prefix"]
    custom = {m.key: m.value for m in sdk.get_model(model_id).data.custom_metadata_list}
    assert custom["modelDescription"] == "true"
