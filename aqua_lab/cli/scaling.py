"""``aqua-lab deployment update`` (scaling of a live deployment) and ``aqua-lab deployment metrics``.

The scaling options have one home here: :mod:`.common` adds them to create/validate/payload with
:func:`add_scaling_options` and reads them with :func:`scaling_fields`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ..domain import Deployment, DeploymentMetrics, ScalingChange
from ..errors import InvalidInput, Problem
from ..service import AquaLabService, window_seconds
from .values import number, whole_arg

AUTOSCALING_HELP = (
    'one predefined-metric rule, e.g. \'{"minimum_instance_count": 1, "maximum_instance_count": 4, '
    '"metric": "CPU_UTILIZATION", "scale_in_threshold": 20, "scale_out_threshold": 75, '
    '"cool_down_in_seconds": 600}\' (OCI only)'
)
POLICY_HELP = "the oci SDK's full scalingPolicy as wire JSON (camelCase; FIXED_SIZE or AUTOSCALING with rules)"


def add_scaling_options(p: argparse.ArgumentParser, with_count: bool = False) -> None:
    if with_count:
        p.add_argument(
            "--instance_count", type=whole_arg, help="a fixed number of instances (local: replicas per model)"
        )
    p.add_argument("--autoscaling", help=AUTOSCALING_HELP)
    p.add_argument("--scaling_policy", help=POLICY_HELP)
    p.add_argument("--bandwidth_mbps", type=whole_arg, help="the load balancer's bandwidth (OCI)")


def _json(text: str, option: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            Problem(option, f"not valid JSON ({exc.msg} at column {exc.colno})", "quote the JSON in single quotes")
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput(Problem(option, "must be a JSON object", "e.g. '{\"maximum_instance_count\": 4}'"))
    return value


def scaling_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The scaling options given, as DeploymentSpec / ScalingChange fields."""
    raw: dict[str, Any] = {}
    if getattr(args, "autoscaling", None):
        raw["autoscaling"] = _json(args.autoscaling, "--autoscaling")
    if getattr(args, "scaling_policy", None):
        raw["scaling_policy"] = _json(args.scaling_policy, "--scaling_policy")
    if getattr(args, "bandwidth_mbps", None) is not None:
        raw["bandwidth_mbps"] = args.bandwidth_mbps
    return raw


def _service(args: argparse.Namespace) -> AquaLabService:
    from .common import service_for  # common adds this module's options: imported late, no cycle

    return service_for(args)


def rescale(args: argparse.Namespace) -> tuple[AquaLabService, Deployment]:
    """The scaling change asked for, made; the caller waits for it as for a create (the local
    platform restarts the runtime with the new replica count, which starts its metrics afresh)."""
    from .common import validated

    raw = scaling_fields(args)
    if args.instance_count is not None:
        raw["instance_count"] = args.instance_count
    change = validated(ScalingChange, raw)
    service = _service(args)
    return service, service.update_scaling(args.model_deployment_id, change)


def render_metrics(metrics: DeploymentMetrics) -> str:
    def cell(value: Any, fmt: str = "{}") -> str:
        return "-" if value is None else fmt.format(value)

    lines = [f"{metrics.deployment_id} over the last {number(metrics.window_s)} s — {metrics.source}"]
    header = f"{'model':<28} {'requests':>8} {'errors':>6} {'TTFT p50':>10} {'TTFT p95':>10} {'tok/s':>7} "
    lines.append(header + f"{'in flight':>9} {'replicas':>8}")
    for m in metrics.models:
        lines.append(
            f"{m.model_name[:28]:<28} {cell(m.requests):>8} {cell(m.errors):>6} "
            f"{cell(m.ttft_p50_ms, '{:.0f} ms'):>10} {cell(m.ttft_p95_ms, '{:.0f} ms'):>10} "
            f"{cell(m.tokens_per_s, '{:.1f}'):>7} {cell(m.in_flight):>9} {cell(m.replicas):>8}"
        )
    for name, points in metrics.deployment.items():
        values = [p.value for p in points if p.value is not None]
        if values:
            lines.append(
                f"deployment {name}: last {number(values[-1])} (max {number(max(values))}, {len(values)} points)"
            )
    return "\n".join(lines)


def cmd_metrics(args: argparse.Namespace) -> str:
    metrics = _service(args).deployment_metrics(args.model_deployment_id, window_seconds(args.window))
    if args.json:
        return json.dumps(metrics.model_dump(mode="json"), indent=2)
    return render_metrics(metrics)


def add_commands(verbs: Any, add_id: Callable[[argparse.ArgumentParser], None]) -> None:
    """``deployment metrics``; ``deployment update`` (cli/deployments.py) takes this module's scaling
    options beside its models, name and description, and hands a scaling change to :func:`cmd_update`."""
    p = verbs.add_parser("metrics", help="per-model requests, errors, TTFT p50/p95, tokens/s, in-flight, replicas")
    add_id(p)
    p.add_argument("--window", default="5m", help="seconds, or 5m, 1h, 1d (default 5m)")
    p.add_argument("--json", action="store_true", help="the full metrics, with the series, as JSON")
    p.set_defaults(run=cmd_metrics)
