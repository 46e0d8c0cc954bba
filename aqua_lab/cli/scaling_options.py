"""The scaling options of create, validate, payload and update: one home, read by :mod:`.common`
(which the verbs in :mod:`.scaling` use, so the options live apart from them: no import circle)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import InvalidInput, Problem
from .values import whole_arg

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
