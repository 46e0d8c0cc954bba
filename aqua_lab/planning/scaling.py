"""A deployment's scaling policy: the wire ``scalingPolicy`` OCI Model Deployment takes, and its checks.

Three forms reach here: a fixed ``instance_count`` (what ADS and AI Quick Actions send), the
``autoscaling`` shorthand (one predefined-metric rule: CPU or memory utilisation with scale-in and
scale-out thresholds), and ``scaling_policy``, the oci SDK's full ``AutoScalingPolicy`` as wire JSON
(several rules, custom MQL queries).  All three become one wire dict, checked in one place, so a
bad policy is refused with the field the user wrote (``autoscaling.scale_in_threshold`` for the
shorthand, ``scaling_policy.autoScalingPolicies[0].rules[1].scaleOutConfiguration.query`` for the
full form) before OCI sees it.  Pure: no SDK, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..domain import NO_ZERO_INSTANCES, Autoscaling, DeploymentSpec, ScalingChange, Shape
from ..errors import InvalidInput, Problem

#: OCI's documented minimum cool-down between two scaling actions (AutoScalingPolicy.cool_down_in_seconds)
MIN_COOL_DOWN_S = 300
#: no deployment is this large: a count above it is a typo (10**6), refused before anything is built for it
MAX_INSTANCES = 1000
#: GPUs one autoscaling deployment may reach before we warn about the tenancy's service limits
QUOTA_WARN_GPUS = 16
PREDEFINED_METRICS = ("CPU_UTILIZATION", "MEMORY_UTILIZATION")
_DURATION = re.compile(r"^PT(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+S)?$")

# the keys each wire object may carry (the SDK drops unknown keys silently: we refuse them instead)
_KEYS = {
    "FIXED_SIZE": {"policyType", "instanceCount"},
    "AUTOSCALING": {"policyType", "coolDownInSeconds", "isEnabled", "autoScalingPolicies"},
    "THRESHOLD_POLICY": {
        "autoScalingPolicyType",
        "rules",
        "maximumInstanceCount",
        "minimumInstanceCount",
        "initialInstanceCount",
    },
    "PREDEFINED_EXPRESSION": {
        "metricExpressionRuleType",
        "metricType",
        "scaleInConfiguration",
        "scaleOutConfiguration",
    },
    "CUSTOM_EXPRESSION": {"metricExpressionRuleType", "scaleInConfiguration", "scaleOutConfiguration"},
    "THRESHOLD": {"scalingConfigurationType", "pendingDuration", "instanceCountAdjustment", "threshold"},
    "QUERY": {"scalingConfigurationType", "pendingDuration", "instanceCountAdjustment", "query"},
}

#: wire paths of the shorthand's policy → the shorthand's own field names
_SHORTHAND = {
    "coolDownInSeconds": "cool_down_in_seconds",
    "isEnabled": "is_enabled",
    "autoScalingPolicies[0].minimumInstanceCount": "minimum_instance_count",
    "autoScalingPolicies[0].maximumInstanceCount": "maximum_instance_count",
    "autoScalingPolicies[0].initialInstanceCount": "initial_instance_count",
    "autoScalingPolicies[0].rules[0].metricType": "metric",
    "autoScalingPolicies[0].rules[0].scaleInConfiguration.threshold": "scale_in_threshold",
    "autoScalingPolicies[0].rules[0].scaleOutConfiguration.threshold": "scale_out_threshold",
    "autoScalingPolicies[0].rules[0].scaleInConfiguration.pendingDuration": "pending_duration",
    "autoScalingPolicies[0].rules[0].scaleOutConfiguration.pendingDuration": "pending_duration",
    "autoScalingPolicies[0].rules[0].scaleInConfiguration.instanceCountAdjustment": "instance_count_adjustment",
    "autoScalingPolicies[0].rules[0].scaleOutConfiguration.instanceCountAdjustment": "instance_count_adjustment",
}


def from_shorthand(a: Autoscaling) -> dict[str, Any]:
    """``--autoscaling``'s one rule as the SDK's ``AutoScalingPolicy`` wire JSON."""

    def side(threshold: int) -> dict[str, Any]:
        return {
            "scalingConfigurationType": "THRESHOLD",
            "threshold": threshold,
            "pendingDuration": a.pending_duration,
            "instanceCountAdjustment": a.instance_count_adjustment,
        }

    return {
        "policyType": "AUTOSCALING",
        "coolDownInSeconds": a.cool_down_in_seconds,
        "isEnabled": a.is_enabled,
        "autoScalingPolicies": [
            {
                "autoScalingPolicyType": "THRESHOLD",
                "minimumInstanceCount": a.minimum_instance_count,
                "maximumInstanceCount": a.maximum_instance_count,
                "initialInstanceCount": a.initial_instance_count or a.minimum_instance_count,
                "rules": [
                    {
                        "metricExpressionRuleType": "PREDEFINED_EXPRESSION",
                        "metricType": a.metric,
                        "scaleInConfiguration": side(a.scale_in_threshold),
                        "scaleOutConfiguration": side(a.scale_out_threshold),
                    }
                ],
            }
        ],
    }


def wire_policy(spec: DeploymentSpec) -> dict[str, Any]:
    """The ``scalingPolicy`` a create (or update) sends for ``spec``."""
    if spec.scaling_policy is not None:
        return spec.scaling_policy
    if spec.autoscaling is not None:
        return from_shorthand(spec.autoscaling)
    return {"policyType": "FIXED_SIZE", "instanceCount": spec.instance_count}


def is_autoscaling(spec: DeploymentSpec) -> bool:
    return wire_policy(spec).get("policyType") == "AUTOSCALING"


def initial_instances(policy: dict[str, Any]) -> int:
    """How many instances a deployment with ``policy`` starts with."""
    if policy.get("policyType") == "AUTOSCALING":
        first = (policy.get("autoScalingPolicies") or [{}])[0]
        return int(first.get("initialInstanceCount") or first.get("minimumInstanceCount") or 1)
    return int(policy.get("instanceCount") or 1)


def instance_bounds(policy: dict[str, Any]) -> tuple[int, int]:
    """(min, max) instances ``policy`` allows; a fixed size is both."""
    if policy.get("policyType") == "AUTOSCALING":
        first = (policy.get("autoScalingPolicies") or [{}])[0]
        return int(first.get("minimumInstanceCount") or 1), int(first.get("maximumInstanceCount") or 1)
    count = int(policy.get("instanceCount") or 1)
    return count, count


def change_policy(change: ScalingChange) -> dict[str, Any] | None:
    """The wire policy a scaling change asks for (None: only the bandwidth changes); one of
    instance_count, autoscaling and scaling_policy, checked as a create's would be."""
    given = [k for k in ("instance_count", "autoscaling", "scaling_policy") if getattr(change, k) is not None]
    if len(given) > 1:
        raise InvalidInput(Problem(given[1], f"{' and '.join(given)} are given", "give one of them"))
    if not given:
        if change.bandwidth_mbps is None:
            raise InvalidInput(
                Problem("instance_count", "nothing to change", "give instance_count, autoscaling or scaling_policy")
            )
        return None
    spec = DeploymentSpec(
        models=[],
        instance_shape="-",
        display_name="-",
        instance_count=change.instance_count or 1,
        autoscaling=change.autoscaling,
        scaling_policy=change.scaling_policy,
    )
    problems, _ = check(spec)
    if problems:
        raise InvalidInput(problems)
    return wire_policy(spec)


def check(spec: DeploymentSpec, shape: Shape | None = None) -> tuple[list[Problem], list[str]]:
    """Every problem of the spec's scaling policy (field paths as the user wrote them) and warnings."""
    problems: list[Problem] = []
    forms = (("autoscaling", spec.autoscaling), ("scaling_policy", spec.scaling_policy))
    given = [name for name, value in forms if value is not None]
    if len(given) > 1:
        return [Problem("scaling_policy", "both autoscaling and scaling_policy are given", "give one of them")], []
    if given and spec.instance_count != 1 and is_autoscaling(spec):
        problems.append(
            Problem(
                "instance_count",
                f"instance_count {spec.instance_count} is a fixed size, but {given[0]} autoscales",
                f"drop instance_count and set the starting size as {given[0]}'s initial instance count",
            )
        )
    if spec.autoscaling is not None:

        def where(path: str) -> str:
            return "autoscaling." + _SHORTHAND.get(path, path)

    else:

        def where(path: str) -> str:
            return "scaling_policy." + path if path else "scaling_policy"

    policy = wire_policy(spec)
    problems += check_wire(policy, where)
    warnings: list[str] = []
    if not problems and shape is not None and shape.gpu_count:
        low, high = instance_bounds(policy)
        if high > low and high * shape.gpu_count >= QUOTA_WARN_GPUS:
            warnings.append(
                f"scaling out to {high} instances of {shape.name} uses up to {high * shape.gpu_count} GPUs: "
                "check that your tenancy's Data Science service limit for this shape allows it, or the "
                "scale-out fails with a quota error"
            )
    return problems, warnings


def check_wire(policy: Any, where: Callable[[str], str]) -> list[Problem]:
    """Checks the wire ``scalingPolicy`` as the service would; ``where`` turns a wire path into the
    field name the user knows."""
    if not isinstance(policy, dict):
        return [Problem(where(""), "must be a JSON object", 'e.g. {"policyType": "FIXED_SIZE", "instanceCount": 2}')]
    kind = policy.get("policyType")
    if kind not in ("FIXED_SIZE", "AUTOSCALING"):
        return [Problem(where("policyType"), f"{kind!r} is not a policy type", "use FIXED_SIZE or AUTOSCALING")]
    problems = _unknown_keys(policy, kind, "", where)
    if kind == "FIXED_SIZE":
        problems += _count(policy, "instanceCount", "", where)
        return problems
    cool = policy.get("coolDownInSeconds", MIN_COOL_DOWN_S)
    if not _is_int(cool) or cool < MIN_COOL_DOWN_S:
        problems.append(
            Problem(
                where("coolDownInSeconds"),
                f"{cool!r} seconds is below OCI's minimum cool-down of {MIN_COOL_DOWN_S} s",
                f"use at least {MIN_COOL_DOWN_S} (the default is 600)",
            )
        )
    if not isinstance(policy.get("isEnabled", True), bool):
        problems.append(Problem(where("isEnabled"), "must be true or false"))
    policies = policy.get("autoScalingPolicies")
    if not isinstance(policies, list) or not policies:
        problems.append(
            Problem(
                where("autoScalingPolicies"),
                "an AUTOSCALING policy needs one THRESHOLD policy",
                'add [{"autoScalingPolicyType": "THRESHOLD", "minimumInstanceCount": 1, '
                '"maximumInstanceCount": 2, "rules": [...]}]',
            )
        )
        return problems
    for i, item in enumerate(policies):
        problems += _threshold_policy(item, f"autoScalingPolicies[{i}]", where)
    return problems


def _threshold_policy(item: Any, at: str, where: Callable[[str], str]) -> list[Problem]:
    if not isinstance(item, dict) or item.get("autoScalingPolicyType") != "THRESHOLD":
        got = item.get("autoScalingPolicyType") if isinstance(item, dict) else item
        return [Problem(where(f"{at}.autoScalingPolicyType"), f"{got!r} is not supported", "use THRESHOLD")]
    problems = _unknown_keys(item, "THRESHOLD_POLICY", at, where)
    for key in ("minimumInstanceCount", "maximumInstanceCount"):
        problems += _count(item, key, at, where)
    if "initialInstanceCount" in item:
        problems += _count(item, "initialInstanceCount", at, where)
    if problems:
        return problems
    low, high = item["minimumInstanceCount"], item["maximumInstanceCount"]
    initial = item.get("initialInstanceCount", low)
    if low > high:
        problems.append(
            Problem(
                where(f"{at}.minimumInstanceCount"),
                f"the minimum ({low}) is above the maximum ({high})",
                "make minimum ≤ maximum",
            )
        )
    elif not low <= initial <= high:
        problems.append(
            Problem(
                where(f"{at}.initialInstanceCount"),
                f"{initial} is outside minimum..maximum ({low}..{high})",
                f"use a value from {low} to {high}",
            )
        )
    rules = item.get("rules")
    if not isinstance(rules, list) or not rules:
        problems.append(
            Problem(
                where(f"{at}.rules"),
                "a THRESHOLD policy needs at least one rule",
                'add {"metricExpressionRuleType": "PREDEFINED_EXPRESSION", "metricType": "CPU_UTILIZATION", …}',
            )
        )
        return problems
    for j, rule in enumerate(rules):
        problems += _rule(rule, f"{at}.rules[{j}]", where)
    return problems


def _rule(rule: Any, at: str, where: Callable[[str], str]) -> list[Problem]:
    kind = rule.get("metricExpressionRuleType") if isinstance(rule, dict) else None
    if kind not in ("PREDEFINED_EXPRESSION", "CUSTOM_EXPRESSION"):
        return [
            Problem(
                where(f"{at}.metricExpressionRuleType"),
                f"{kind!r} is not a rule type",
                "use PREDEFINED_EXPRESSION (CPU/memory utilisation) or CUSTOM_EXPRESSION (an MQL query)",
            )
        ]
    problems = _unknown_keys(rule, kind, at, where)
    side_kind = "THRESHOLD" if kind == "PREDEFINED_EXPRESSION" else "QUERY"
    if kind == "PREDEFINED_EXPRESSION" and rule.get("metricType") not in PREDEFINED_METRICS:
        problems.append(
            Problem(
                where(f"{at}.metricType"),
                f"{rule.get('metricType')!r} is not a predefined metric",
                f"use one of {list(PREDEFINED_METRICS)}, or a CUSTOM_EXPRESSION rule with an MQL query",
            )
        )
    sides = {}
    for name in ("scaleInConfiguration", "scaleOutConfiguration"):
        side = rule.get(name)
        path = f"{at}.{name}"
        if not isinstance(side, dict):
            problems.append(Problem(where(path), "missing", f"add a {side_kind} scaling configuration"))
            continue
        if side.get("scalingConfigurationType") != side_kind:
            problems.append(
                Problem(
                    where(f"{path}.scalingConfigurationType"),
                    f"{side.get('scalingConfigurationType')!r} does not fit a {kind} rule",
                    f"use {side_kind}",
                )
            )
            continue
        problems += _unknown_keys(side, side_kind, path, where)
        duration = side.get("pendingDuration", "PT3M")
        if not isinstance(duration, str) or not _DURATION.match(duration):
            problems.append(
                Problem(where(f"{path}.pendingDuration"), f"{duration!r} is not an ISO 8601 duration", "e.g. PT5M")
            )
        if "instanceCountAdjustment" in side:
            problems += _count(side, "instanceCountAdjustment", path, where)
        if side_kind == "THRESHOLD":
            value = side.get("threshold")
            if not _is_int(value) or not 0 <= value <= 100:
                problems.append(
                    Problem(where(f"{path}.threshold"), f"{value!r} is not a percentage", "use an integer 0–100")
                )
            else:
                sides[name] = value
        else:
            query = side.get("query")
            if not isinstance(query, str) or not query.strip():
                problems.append(
                    Problem(
                        where(f"{path}.query"),
                        "a CUSTOM_EXPRESSION rule needs an MQL query",
                        'e.g. PredictRequestCount[1m]{resourceId = "MODEL_DEPLOYMENT_OCID"}.grouping().sum() > 100',
                    )
                )
    if len(sides) == 2 and sides["scaleInConfiguration"] >= sides["scaleOutConfiguration"]:
        problems.append(
            Problem(
                where(f"{at}.scaleInConfiguration.threshold"),
                f"the scale-in threshold ({sides['scaleInConfiguration']}) is not below the scale-out threshold "
                f"({sides['scaleOutConfiguration']}): the deployment would flap",
                "make scale-in lower than scale-out, e.g. 20 and 75",
            )
        )
    return problems


def _unknown_keys(obj: dict, kind: str, at: str, where: Callable[[str], str]) -> list[Problem]:
    allowed = _KEYS[kind]
    prefix = f"{at}." if at else ""
    return [
        Problem(where(f"{prefix}{key}"), "is not a field of this object", f"use only {sorted(allowed)} (camelCase)")
        for key in obj
        if key not in allowed
    ]


def _count(obj: dict, key: str, at: str, where: Callable[[str], str]) -> list[Problem]:
    value = obj.get(key)
    prefix = f"{at}." if at else ""
    if _is_int(value) and value > MAX_INSTANCES:
        return [
            Problem(
                where(f"{prefix}{key}"),
                f"{value} instances is above {MAX_INSTANCES}, the most any deployment may ask for",
                f"use 1 to {MAX_INSTANCES} (your tenancy's service limits are far lower)",
            )
        ]
    if _is_int(value) and value >= 1:
        return []
    if _is_int(value) and value == 0:
        what, fix = NO_ZERO_INSTANCES.split("; ", 1)
        return [Problem(where(f"{prefix}{key}"), what, fix)]
    return [Problem(where(f"{prefix}{key}"), f"{value!r} is not a count of instances", "use an integer ≥ 1")]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
