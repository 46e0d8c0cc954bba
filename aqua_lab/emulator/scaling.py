"""The emulator's model-deployment scaling and its OCI Monitoring stand-in.

* A create or update carrying a ``scalingPolicy`` is checked as the service checks it (the same
  fields and limits aqua_lab validates before sending: a 400 ``InvalidParameter`` names the field);
  the deployment reports its size in ``modelDeploymentSystemData.currentInstanceCount``.
* ``POST /_emulator/metric {"deployment_id", "metric": "CPU_UTILIZATION", "value": 90}`` plays the
  autoscaler: a value above a rule's scale-out threshold adds ``instanceCountAdjustment`` instances
  (up to the maximum), below its scale-in threshold removes them (down to the minimum).  Pending
  durations and cool-downs are not waited for: the call is the moment the metric has crossed.
* ``POST /20180401/metrics/actions/summarizeMetricsData`` answers MQL queries such as
  ``PredictRequestCount[1m]{resourceId = "<md ocid>"}.sum()`` over what the emulator served
  (``PredictRequestCount``, ``PredictLatency``, ``PredictResponse``) and the utilisation values
  posted above (``CpuUtilization``, ``MemoryUtilization``), in namespace ``oci_datascience_modeldeploy``.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Any

from ..planning.scaling import check_wire, initial_instances, instance_bounds

NAMESPACE = "oci_datascience_modeldeploy"
MONITORING = "/20180401"
_QUERY = re.compile(
    r"^\s*(?P<metric>\w+)\[(?P<interval>\d+)(?P<unit>[mhd])\]\s*(?:\{(?P<dims>[^}]*)\})?\s*"
    r"(?P<grouping>\.grouping\(\))?\s*\.(?P<stat>\w+)\((?P<arg>[^)]*)\)\s*$"
)
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}


class Invalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def scaling_details(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a (create or update) deployment configuration that holds the scaling policy."""
    if config.get("deploymentType") == "MODEL_GROUP":
        return config.setdefault("infrastructureConfigurationDetails", {})
    return config.setdefault("modelConfigurationDetails", {})


def check_policy(policy: Any) -> None:
    problems = check_wire(policy, lambda path: "scalingPolicy." + path if path else "scalingPolicy")
    if problems:
        raise Invalid("; ".join(str(p) for p in problems))


def on_create(deployment: dict[str, Any]) -> None:
    config = deployment["modelDeploymentConfigurationDetails"]
    policy = scaling_details(config).get("scalingPolicy") or {"policyType": "FIXED_SIZE", "instanceCount": 1}
    check_policy(policy)
    count = initial_instances(policy)
    deployment["modelDeploymentSystemData"] = {"systemInfraType": "INSTANCE_POOL", "currentInstanceCount": count}
    deployment["_scaling_events"] = [_event(0, count, "created")]
    deployment["_series"] = []  # (time, metric, value)


def on_update(deployment: dict[str, Any], config: dict[str, Any]) -> None:
    """Apply an update's scalingPolicy / bandwidthMbps in place (the deployment keeps its endpoint)."""
    change = scaling_details(dict(config)) if config else {}
    if not change:
        return
    if "scalingPolicy" in change:
        check_policy(change["scalingPolicy"])
    if "bandwidthMbps" in change and (not isinstance(change["bandwidthMbps"], int) or change["bandwidthMbps"] < 1):
        raise Invalid(f"bandwidthMbps {change['bandwidthMbps']!r} must be a positive integer")
    target = scaling_details(deployment["modelDeploymentConfigurationDetails"])
    for key in ("scalingPolicy", "bandwidthMbps"):
        if key in change:
            target[key] = change[key]
    if "scalingPolicy" in change:
        policy = change["scalingPolicy"]
        low, high = instance_bounds(policy)
        now_count = current(deployment)
        new = initial_instances(policy) if policy.get("policyType") == "FIXED_SIZE" else min(high, max(low, now_count))
        _resize(deployment, new, "scaling policy updated")


def current(deployment: dict[str, Any]) -> int:
    return int((deployment.get("modelDeploymentSystemData") or {}).get("currentInstanceCount") or 1)


def _event(before: int, after: int, reason: str) -> dict[str, Any]:
    return {"time": datetime.now(UTC).isoformat(), "from_count": before, "to_count": after, "reason": reason}


def _resize(deployment: dict[str, Any], count: int, reason: str) -> dict[str, Any] | None:
    before = current(deployment)
    if count == before:
        return None
    deployment.setdefault("modelDeploymentSystemData", {"systemInfraType": "INSTANCE_POOL"})
    deployment["modelDeploymentSystemData"]["currentInstanceCount"] = count
    event = _event(before, count, reason)
    deployment.setdefault("_scaling_events", []).append(event)
    return event


def metric_crossed(deployment: dict[str, Any], metric: str, value: float) -> dict[str, Any]:
    """The autoscaler seeing ``metric`` at ``value`` percent: scale as the enabled rules say."""
    deployment.setdefault("_series", []).append((time.time(), _series_name(metric), float(value)))
    config = deployment["modelDeploymentConfigurationDetails"]
    policy = scaling_details(config).get("scalingPolicy") or {}
    if policy.get("policyType") != "AUTOSCALING" or not policy.get("isEnabled", True):
        return {"instance_count": current(deployment), "event": None, "why": "the deployment does not autoscale"}
    for threshold in policy.get("autoScalingPolicies") or []:
        low, high = threshold["minimumInstanceCount"], threshold["maximumInstanceCount"]
        for rule in threshold.get("rules") or []:
            if rule.get("metricExpressionRuleType") != "PREDEFINED_EXPRESSION" or rule.get("metricType") != metric:
                continue
            out, into = rule["scaleOutConfiguration"], rule["scaleInConfiguration"]
            count = current(deployment)
            if value > out["threshold"] and count < high:
                new = min(high, count + out.get("instanceCountAdjustment", 1))
                reason = f"{metric} {value:g} % > scale-out threshold {out['threshold']} %"
            elif value < into["threshold"] and count > low:
                new = max(low, count - into.get("instanceCountAdjustment", 1))
                reason = f"{metric} {value:g} % < scale-in threshold {into['threshold']} %"
            else:
                continue
            return {"instance_count": new, "event": _resize(deployment, new, reason), "why": reason}
    return {"instance_count": current(deployment), "event": None, "why": "no rule's threshold was crossed"}


def _series_name(metric: str) -> str:
    return {"CPU_UTILIZATION": "CpuUtilization", "MEMORY_UTILIZATION": "MemoryUtilization"}.get(metric, metric)


def record_predict(deployment: dict[str, Any], latency_ms: float, status: int) -> None:
    series = deployment.setdefault("_series", [])
    t = time.time()
    series.append((t, "PredictRequestCount", 1.0))
    series.append((t, "PredictLatency", latency_ms))
    series.append((t, f"PredictResponse:{status}", 1.0))


def summarize(deployments: dict[str, dict], body: dict[str, Any]) -> list[dict[str, Any]]:
    """``SummarizeMetricsData`` over the emulator's deployments: one MetricData per deployment."""
    if body.get("namespace") != NAMESPACE:
        raise Invalid(f"namespace {body.get('namespace')!r}: model deployments report in {NAMESPACE!r}")
    match = _QUERY.match(body.get("query") or "")
    if not match:
        raise Invalid(f"query {body.get('query')!r} is not MQL this emulator understands (Metric[1m]{{…}}.stat())")
    metric, step = match["metric"], int(match["interval"]) * _UNIT_S[match["unit"]]
    dims = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', match["dims"] or ""))
    end = _epoch(body.get("endTime")) or time.time()
    start = _epoch(body.get("startTime")) or end - 3600
    out = []
    for ident, d in deployments.items():
        if dims.get("resourceId") not in (None, ident) or d.get("lifecycleState") == "DELETED":
            continue
        code = dims.get("ResponseCode")
        name = f"PredictResponse:{code}" if metric == "PredictResponse" and code else metric
        values = [
            (t, v)
            for t, n, v in d.get("_series", [])
            if (n == name or (metric == "PredictResponse" and not code and n.startswith("PredictResponse:")))
            and start <= t < end
        ]
        buckets: dict[int, list[float]] = {}
        for t, v in values:
            buckets.setdefault(int((t - start) // step), []).append(v)
        points = [
            {"timestamp": _iso(start + (i + 1) * step), "value": _stat(match["stat"], match["arg"], vs)}
            for i, vs in sorted(buckets.items())
        ]
        out.append(
            {
                "namespace": NAMESPACE,
                "compartmentId": d["compartmentId"],
                "name": metric,
                "dimensions": {"resourceId": ident, **({"ResponseCode": code} if code else {})},
                "resolution": f"{match['interval']}{match['unit']}",
                "aggregatedDatapoints": points,
            }
        )
    return out


def _stat(stat: str, arg: str, values: list[float]) -> float:
    if stat in ("sum", "count"):
        return float(sum(values)) if stat == "sum" else float(len(values))
    if stat == "mean":
        return sum(values) / len(values)
    if stat == "max":
        return max(values)
    if stat == "min":
        return min(values)
    if stat == "percentile":
        q = float(arg or 0.5)
        ordered = sorted(values)
        return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]
    raise Invalid(f"statistic {stat!r} is not one of sum, count, mean, max, min, percentile")


def _epoch(value: Any) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
