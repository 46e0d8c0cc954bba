"""Scaling policies in the deployment spec: every form becomes a wire body the oci SDK knows, and a
bad policy is refused with the field the user wrote and its fix."""

from __future__ import annotations

import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.errors import InvalidInput
from aqua_lab.planning import payloads, scaling, validate_deployment
from tests.test_payloads import assert_wire

pytestmark = [pytest.mark.planning, pytest.mark.scaling]

MODELS = [
    {"model_id": "mistralai/Mistral-7B-v0.1", "gpu_count": 1},
    {"model_id": "tiiuae/falcon-7b", "gpu_count": 1},
]
SHORTHAND = {
    "minimum_instance_count": 1,
    "maximum_instance_count": 4,
    "metric": "CPU_UTILIZATION",
    "scale_in_threshold": 20,
    "scale_out_threshold": 75,
    "cool_down_in_seconds": 600,
}
CUSTOM = {
    "policyType": "AUTOSCALING",
    "coolDownInSeconds": 300,
    "isEnabled": True,
    "autoScalingPolicies": [
        {
            "autoScalingPolicyType": "THRESHOLD",
            "minimumInstanceCount": 2,
            "maximumInstanceCount": 6,
            "initialInstanceCount": 3,
            "rules": [
                {
                    "metricExpressionRuleType": "CUSTOM_EXPRESSION",
                    "scaleInConfiguration": {
                        "scalingConfigurationType": "QUERY",
                        "query": 'PredictRequestCount[1m]{resourceId = "X"}.grouping().sum() < 10',
                        "pendingDuration": "PT5M",
                        "instanceCountAdjustment": 1,
                    },
                    "scaleOutConfiguration": {
                        "scalingConfigurationType": "QUERY",
                        "query": 'PredictRequestCount[1m]{resourceId = "X"}.grouping().sum() > 100',
                        "pendingDuration": "PT3M",
                        "instanceCountAdjustment": 2,
                    },
                },
                {
                    "metricExpressionRuleType": "PREDEFINED_EXPRESSION",
                    "metricType": "MEMORY_UTILIZATION",
                    "scaleInConfiguration": {"scalingConfigurationType": "THRESHOLD", "threshold": 30},
                    "scaleOutConfiguration": {"scalingConfigurationType": "THRESHOLD", "threshold": 80},
                },
            ],
        }
    ],
}


def validated(catalog, shape="VM.GPU.A10.2", deployment_type="MULTI", **scaling_fields):
    models = MODELS if deployment_type == "MULTI" else MODELS[:1]
    spec = DeploymentSpec(
        models=models,
        instance_shape=shape,
        display_name="scaled",
        deployment_type=deployment_type,
        **scaling_fields,
    )
    known = {m.model_id: catalog.model_input(m.model_id) for m in spec.models}
    return validate_deployment(spec, known, catalog.shapes)


def create_body(v, model_group_id="ocid1.modelgroup.g"):
    body = payloads.model_deployment_request(v, "img", "ocid1.c", "ocid1.p", model_group_id=model_group_id)
    assert_wire(body, "CreateModelDeploymentDetails")
    config = body["modelDeploymentConfigurationDetails"]
    return config.get("infrastructureConfigurationDetails") or config["modelConfigurationDetails"]


def problems(catalog, **fields):
    with pytest.raises(InvalidInput) as info:
        validated(catalog, **fields)
    return {p.field: p for p in info.value.problems}


def test_fixed_size_is_what_ads_sends(catalog):
    infra = create_body(validated(catalog, instance_count=3, bandwidth_mbps=50))
    assert infra["scalingPolicy"] == {"policyType": "FIXED_SIZE", "instanceCount": 3}
    assert infra["bandwidthMbps"] == 50


def test_the_shorthand_is_one_predefined_rule_the_sdk_knows(catalog):
    infra = create_body(validated(catalog, autoscaling=SHORTHAND))
    policy = infra["scalingPolicy"]
    assert policy["policyType"] == "AUTOSCALING" and policy["coolDownInSeconds"] == 600 and policy["isEnabled"]
    (threshold,) = policy["autoScalingPolicies"]
    counts = ("minimumInstanceCount", "initialInstanceCount", "maximumInstanceCount")
    assert [threshold[k] for k in counts] == [1, 1, 4]
    (rule,) = threshold["rules"]
    assert rule["metricType"] == "CPU_UTILIZATION"
    assert rule["scaleInConfiguration"]["threshold"] == 20 and rule["scaleOutConfiguration"]["threshold"] == 75
    assert rule["scaleOutConfiguration"]["pendingDuration"] == "PT5M"


def test_the_full_form_passes_through_for_group_and_single_deployments(catalog):
    assert create_body(validated(catalog, scaling_policy=CUSTOM))["scalingPolicy"] == CUSTOM
    single = validated(catalog, deployment_type="SINGLE", scaling_policy=CUSTOM)
    body = payloads.model_deployment_request(single, "img", "c", "p")
    assert_wire(body, "CreateModelDeploymentDetails")
    assert body["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["scalingPolicy"] == CUSTOM


def test_live_updates_are_sdk_bodies():
    group = payloads.update_scaling_request("MODEL_GROUP", CUSTOM, bandwidth_mbps=20)
    assert_wire(group, "UpdateModelDeploymentDetails")
    config = group["modelDeploymentConfigurationDetails"]
    assert config["updateType"] == "ZDT" and config["infrastructureConfigurationDetails"]["scalingPolicy"] == CUSTOM
    single = payloads.update_scaling_request("SINGLE_MODEL", {"policyType": "FIXED_SIZE", "instanceCount": 2})
    assert_wire(single, "UpdateModelDeploymentDetails")
    assert single["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["scalingPolicy"] == {
        "policyType": "FIXED_SIZE",
        "instanceCount": 2,
    }
    with pytest.raises(ValueError, match="nothing to update"):
        payloads.update_scaling_request("MODEL_GROUP")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"minimum_instance_count": 5}, "autoscaling.minimum_instance_count", "above the maximum"),
        ({"initial_instance_count": 9}, "autoscaling.initial_instance_count", "outside minimum..maximum"),
        ({"scale_in_threshold": 80}, "autoscaling.scale_in_threshold", "not below the scale-out"),
        ({"scale_out_threshold": 120}, "autoscaling.scale_out_threshold", "not a percentage"),
        ({"cool_down_in_seconds": 60}, "autoscaling.cool_down_in_seconds", "minimum cool-down of 300"),
        ({"pending_duration": "5 minutes"}, "autoscaling.pending_duration", "ISO 8601"),
    ],
)
def test_bad_shorthand_names_its_field(catalog, change, field, words):
    found = problems(catalog, autoscaling={**SHORTHAND, **change})
    assert field in found, found
    assert words in found[field].message and found[field].fix


def test_bad_full_form_names_the_wire_path(catalog):
    bad = {
        **CUSTOM,
        "coolDownInSecs": 300,
        "autoScalingPolicies": [
            {
                **CUSTOM["autoScalingPolicies"][0],
                "rules": [
                    {**CUSTOM["autoScalingPolicies"][0]["rules"][0], "scaleOutConfiguration": {"query": ""}},
                    {**CUSTOM["autoScalingPolicies"][0]["rules"][1], "metricType": "GPU_UTILIZATION"},
                ],
            }
        ],
    }
    found = problems(catalog, scaling_policy=bad)
    assert "scaling_policy.coolDownInSecs" in found
    rules = "scaling_policy.autoScalingPolicies[0].rules"
    assert "QUERY" in found[f"{rules}[0].scaleOutConfiguration.scalingConfigurationType"].fix
    assert "CPU_UTILIZATION" in found[f"{rules}[1].metricType"].fix
    assert "policyType" in str(problems(catalog, scaling_policy={"instanceCount": 2}))


def test_forms_that_contradict_each_other(catalog):
    assert "give one" in problems(catalog, autoscaling=SHORTHAND, scaling_policy=CUSTOM)["scaling_policy"].fix
    assert "initial instance count" in problems(catalog, autoscaling=SHORTHAND, instance_count=2)["instance_count"].fix


def test_a_large_maximum_warns_about_quota(catalog):
    v = validated(catalog, shape="BM.GPU.A10.4", autoscaling={**SHORTHAND, "maximum_instance_count": 4})
    assert any("16 GPUs" in w and "service limit" in w for w in v.warnings)
    assert not any("service limit" in w for w in validated(catalog, autoscaling=SHORTHAND).warnings)


def test_instance_bounds_and_initial_size():
    assert scaling.instance_bounds(CUSTOM) == (2, 6) and scaling.initial_instances(CUSTOM) == 3
    fixed = {"policyType": "FIXED_SIZE", "instanceCount": 2}
    assert scaling.instance_bounds(fixed) == (2, 2) and scaling.initial_instances(fixed) == 2
