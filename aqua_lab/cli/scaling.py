"""``aqua-lab deployment update`` (scaling of a live deployment) and ``aqua-lab deployment metrics``;
the scaling options themselves are in :mod:`.scaling_options`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ..domain import Deployment, DeploymentMetrics, ScalingChange
from ..service import AquaLabService, window_seconds
from .common import service_for, validated
from .scaling_options import scaling_fields
from .values import number


def _service(args: argparse.Namespace) -> AquaLabService:
    return service_for(args)


def rescale(args: argparse.Namespace) -> tuple[AquaLabService, Deployment]:
    """The scaling change asked for, made; the caller waits for it as for a create (the local
    platform restarts the runtime with the new replica count, which starts its metrics afresh)."""
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
