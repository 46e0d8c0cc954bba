"""Autoscaling on OCI, end to end through the real oci SDK against the emulator: create with a
policy, the emulator's autoscaler scales out, the deployment shows the new count and the event, the
policy changes live, and OCI Monitoring's stand-in counts the predict calls."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.domain import DeploymentSpec, ScalingChange  # noqa: E402
from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config  # noqa: E402
from aqua_lab.errors import InvalidInput, UpstreamError  # noqa: E402
from aqua_lab.platforms.oci import resolve_auth  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402
from tests.test_oci import SERVICE, _chat, _platform  # noqa: E402

pytestmark = [pytest.mark.oci, pytest.mark.scaling]

AUTO = {
    "minimum_instance_count": 1,
    "maximum_instance_count": 3,
    "metric": "CPU_UTILIZATION",
    "scale_in_threshold": 20,
    "scale_out_threshold": 75,
    "cool_down_in_seconds": 600,
}


@pytest.fixture(scope="module")
def emulator():
    emulator = Emulator(polls_to_active=2).start()
    emulator.ids = seed_from_bundled(emulator, SERVICE)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def service(emulator, tmp_path_factory):
    config = write_api_key_config(emulator, tmp_path_factory.mktemp("oci"))
    return AquaLabService(_platform(emulator, resolve_auth(config_file=config)))


def _crossed(emulator, deployment_id, value, metric="CPU_UTILIZATION"):
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/metric",
        data=json.dumps({"deployment_id": deployment_id, "metric": metric, "value": value}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _sent_policy(emulator, deployment_id):
    config = emulator.state.deployments[deployment_id]["modelDeploymentConfigurationDetails"]
    return config["infrastructureConfigurationDetails"]["scalingPolicy"]


def test_autoscaling_deployment_scales_out_and_its_policy_changes_live(emulator, service):
    spec = DeploymentSpec(
        models=[
            {"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "gemma"},
            {"model_id": "microsoft/phi-2", "gpu_count": 1, "model_name": "phi"},
        ],
        instance_shape="VM.GPU.A10.2",
        display_name="autoscaled",
        autoscaling=AUTO,
        bandwidth_mbps=20,
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    try:
        assert deployment.state == "ACTIVE"
        scaling = deployment.scaling
        assert scaling.policy["policyType"] == "AUTOSCALING" and scaling.bandwidth_mbps == 20
        assert (scaling.instance_count, scaling.minimum_instance_count, scaling.maximum_instance_count) == (1, 1, 3)
        assert _sent_policy(emulator, deployment.id)["autoScalingPolicies"][0]["rules"][0]["metricType"] == (
            "CPU_UTILIZATION"
        )

        assert _crossed(emulator, deployment.id, 50)["event"] is None  # between the thresholds: nothing
        out = _crossed(emulator, deployment.id, 92)
        assert out["instance_count"] == 2 and "scale-out threshold 75" in out["why"]
        seen = service.get_deployment(deployment.id).scaling
        assert seen.instance_count == 2
        assert (seen.events[-1].from_count, seen.events[-1].to_count) == (1, 2)

        change = ScalingChange(autoscaling={**AUTO, "maximum_instance_count": 4, "scale_out_threshold": 60})
        service.update_scaling(deployment.id, change)
        assert _sent_policy(emulator, deployment.id)["autoScalingPolicies"][0]["maximumInstanceCount"] == 4
        live = service.wait(deployment.id, timeout=10, interval=0.01).scaling
        assert live.maximum_instance_count == 4 and live.instance_count == 2  # the running size is kept
        assert _crossed(emulator, deployment.id, 65)["instance_count"] == 3  # the new threshold is in force
        assert _crossed(emulator, deployment.id, 5)["instance_count"] == 2

        service.update_scaling(deployment.id, ScalingChange(instance_count=1, bandwidth_mbps=40))
        fixed = service.wait(deployment.id, timeout=10, interval=0.01).scaling
        assert fixed.policy == {"policyType": "FIXED_SIZE", "instanceCount": 1} and fixed.bandwidth_mbps == 40
        assert fixed.instance_count == 1 and fixed.events[-1].to_count == 1
        assert _crossed(emulator, deployment.id, 99)["why"] == "the deployment does not autoscale"
    finally:
        service.delete(deployment.id)


def test_the_emulator_validates_a_policy_like_the_service(emulator, service):
    spec = DeploymentSpec(
        models=[{"model_id": "google/gemma-2b", "gpu_count": 1}],
        instance_shape="VM.GPU.A10.2",
        display_name="one",
        instance_count=2,
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    try:
        assert deployment.scaling.instance_count == 2
        bad = {"policyType": "FIXED_SIZE", "instanceCount": 0}
        with pytest.raises(UpstreamError, match="instanceCount") as info:  # past aqua_lab's own check
            service.platform.update_scaling(deployment.id, bad)
        assert info.value.status == 400
        with pytest.raises(InvalidInput) as refused:
            service.update_scaling(deployment.id, ScalingChange(autoscaling={**AUTO, "cool_down_in_seconds": 30}))
        assert refused.value.problems[0].field == "autoscaling.cool_down_in_seconds"
    finally:
        service.delete(deployment.id)


def test_monitoring_stand_in_counts_predict_calls(emulator, service):
    spec = DeploymentSpec(
        models=[
            {"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "gemma"},
            {"model_id": "microsoft/phi-2", "gpu_count": 1, "model_name": "phi"},
        ],
        instance_shape="VM.GPU.A10.2",
        display_name="measured",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    try:
        tokens = {"gemma": 0, "phi": 0}
        for model in ("gemma", "phi"):
            tokens[model] += _chat(service, deployment.id, model, stream=False)["usage"]["completion_tokens"]
        streamed = _chat(service, deployment.id, "phi", max_tokens=5)
        tokens["phi"] += len(streamed)
        metrics = service.deployment_metrics(deployment.id, 600)
        assert metrics.platform == "oci" and "OCI Monitoring" in metrics.source
        assert metrics.deployment["total_requests"][0].value == 3
        assert sum(p.value for p in metrics.deployment["requests"]) == 3
        assert all(p.value > 0 for p in metrics.deployment["latency_p95_ms"])
        assert [(m.model_name, m.replicas) for m in metrics.models] == [("gemma", 1), ("phi", 1)]
        # per model, from what the service's chat path measured (OCI's metrics are per deployment)
        gemma, phi = metrics.models
        assert (gemma.requests, phi.requests, phi.errors) == (1, 2, 0)
        assert (gemma.generated_tokens, phi.generated_tokens) == (tokens["gemma"], tokens["phi"])
        assert phi.ttft_p95_ms >= phi.ttft_p50_ms > 0 and "chats this server relayed" in metrics.source
        monitoring_calls = [p for _, p in emulator.state.requests if p.endswith("summarizeMetricsData")]
        assert len(monitoring_calls) == 3
    finally:
        service.delete(deployment.id)
