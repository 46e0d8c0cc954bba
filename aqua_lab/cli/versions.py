"""``aqua-lab deployment versions | rollback``: the versions of a deployment's model group (each update
makes one by CLONE) and the way back to an earlier one (a LIVE update to it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..domain import Deployment
from ..errors import InvalidInput, Problem
from .common import DEFAULT_PLATFORM, add_array, add_platform, dump_items, service_for
from .values import seconds_arg, whole_arg


def deployment_id(args: argparse.Namespace) -> str:
    """The deployment named positionally or by ``--model_deployment_id`` (ADS's option)."""
    given = args.deployment_id or args.model_deployment_id
    if not given:
        raise InvalidInput(Problem("--model_deployment_id", "missing", "name the deployment: versions <id>"))
    if args.deployment_id and args.model_deployment_id and args.deployment_id != args.model_deployment_id:
        raise InvalidInput(
            Problem("--model_deployment_id", "two different deployments named", "give the deployment once")
        )
    return given


def cmd_versions(args: argparse.Namespace) -> str:
    versions = service_for(args).deployment_versions(deployment_id(args))
    if not args.table:
        return dump_items(versions, args)
    width = max([len("MODEL GROUP"), *(len(v.model_group_id) for v in versions)])  # OCI's OCIDs run to ~90
    rows = [f"{'VERSION':<8} {'LIVE':<5} {'CREATED':<33} {'MODEL GROUP':<{width}} MEMBERS"]
    for v in versions:
        members = ", ".join(m.inference_key or m.model_id for m in v.members)
        live = "*" if v.live else ""
        rows.append(f"{v.version:<8} {live:<5} {v.created_on or '':<33} {v.model_group_id:<{width}} {members}")
    return "\n".join(rows)


def say_update(deployment: Deployment) -> None:
    """One stderr line: which update type was used, and why."""
    if deployment.update is not None:
        u = deployment.update
        version = f" (version {u.version})" if u.version else ""
        if u.update_type == "NONE":  # no update of the group: say that, not "NONE update to"
            print(f"aqua-lab: model group {u.model_group_id}{version} kept: {u.reason}", file=sys.stderr)
            return
        print(
            f"aqua-lab: {u.update_type} update to model group {u.model_group_id}{version}: {u.reason}", file=sys.stderr
        )


def _options(p: argparse.ArgumentParser) -> None:
    add_platform(p, DEFAULT_PLATFORM)
    p.add_argument("deployment_id", nargs="?", help="the deployment (or --model_deployment_id)")
    p.add_argument("--model_deployment_id")
    p.add_argument("--compartment_id")
    p.add_argument("--project_id")


def add_version_verbs(dverbs: argparse._SubParsersAction, rollback: Callable[[argparse.Namespace], Any]) -> None:
    p = dverbs.add_parser(
        "versions", help="OCI: the versions of a deployment's model group, oldest first, the live one marked"
    )
    _options(p)
    add_array(p)
    p.add_argument("--table", action="store_true", help="a table instead of JSON")
    p.set_defaults(run=cmd_versions)
    p = dverbs.add_parser("rollback", help="OCI: back to an earlier version of the deployment's model group (LIVE)")
    _options(p)
    p.add_argument("--version", type=whole_arg, required=True, help="the version to go back to (see `versions`)")
    p.add_argument("--no_wait", action="store_true", help="return at once, without waiting")
    p.add_argument(
        "--timeout", type=seconds_arg, default=600, help="seconds to wait (default 600); past it the exit status is 3"
    )
    p.set_defaults(run=rollback)
