"""``aqua-lab`` — the command line, with the verbs and option names of ``ads aqua deployment …``.

Bad input ends with a one-line ``aqua-lab: error: …`` on stderr and exit status 2; nothing is
half-done.  ADS verbs print JSON like ADS; ``plan`` prints a GPU-split table (``--json`` for JSON).
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from . import __version__
from .catalog import bundled_catalog, load_deployment_config_file
from .domain import DeploymentSpec, ModelInput, Plan
from .errors import AquaLabError, InvalidInput, Problem
from .planning import ShapeCatalog, payloads, plan, validate_deployment
from .planning.configs import json_path
from .planning.sizing import parameter_count_from_name

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
    ids = _json_arg(text, "--model_ids") if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput(Problem("--model_ids", "expected a list of model ids", 'e.g. \'["id1", "id2"]\''))
    if not ids:
        raise InvalidInput(Problem("--model_ids", "no model ids given", "pass one or more model ids"))
    return ids


def _custom_models(pairs: Sequence[str]) -> dict[str, ModelInput]:
    """``--model_config ID=PATH``: plan with a model of your own and its deployment_config.json."""
    shapes = bundled_catalog().shapes
    custom = {}
    for pair in pairs:
        model_id, sep, path = pair.partition("=")
        if not sep or not model_id or not path:
            raise InvalidInput(
                Problem("--model_config", f"{pair!r} is not ID=PATH", "e.g. my-model=config/deployment_config.json")
            )
        loaded = load_deployment_config_file(path, shapes)
        for warning in loaded.warnings:
            print(f"aqua-lab: warning: {warning}", file=sys.stderr)
        custom[model_id] = ModelInput(
            model_id=model_id,
            name=model_id,
            config=loaded.config,
            parameter_count_b=parameter_count_from_name(model_id),
        )
    return custom


def _model_inputs(ids: Sequence[str], custom: dict[str, ModelInput]) -> list[ModelInput]:
    catalog = bundled_catalog()
    problems, inputs = [], []
    for i, model_id in enumerate(ids):
        if model_id in custom:
            inputs.append(custom[model_id])
            continue
        model = catalog.find_model(model_id)
        if model is None:
            problems.append(Problem(f"--model_ids[{i}]", f"unknown model {model_id!r}", catalog.suggest(model_id)))
        else:
            inputs.append(catalog.model_input(model.id))
    if problems:
        raise InvalidInput(problems)
    return inputs


def _canonical_primary(primary: str | None, inputs: Sequence[ModelInput]) -> str | None:
    if primary is None:
        return None
    found = bundled_catalog().find_model(primary)
    return found.id if found and found.id in {m.model_id for m in inputs} else primary


def _spec(args: argparse.Namespace) -> DeploymentSpec:
    raw: dict[str, Any] = {
        "models": _json_arg(args.models, "--models"),
        "instance_shape": args.instance_shape,
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
    if isinstance(raw["models"], list):  # service models may be named by short name in any case
        catalog = bundled_catalog()
        for entry in raw["models"]:
            if isinstance(entry, dict) and isinstance(entry.get("model_id"), str):
                found = catalog.find_model(entry["model_id"])
                entry["model_id"] = found.id if found else entry["model_id"]
    try:
        return DeploymentSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(
            [Problem("--" + json_path(e["loc"]).removeprefix("$."), e["msg"]) for e in exc.errors()]
        ) from None


def _validated(args: argparse.Namespace):
    spec = _spec(args)
    catalog = bundled_catalog()
    custom = _custom_models(args.model_config or [])
    ids = {m.model_id for m in spec.models}
    known = {
        i: custom[i] if i in custom else catalog.model_input(i) for i in ids if i in custom or catalog.find_model(i)
    }
    return validate_deployment(spec, known, catalog.shapes, catalog.suggest)


# --------------------------------------------------------------------------------------------------
# Output


def _dump(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, indent=2)


def render_plan(result: Plan, show_all: bool = False) -> str:
    lines = []
    names = {}
    for shape_plan in result.gpu_allocation.values():
        for m in shape_plan.models:
            names.setdefault(m.ocid, m.model_name or m.ocid)
    letters = {}
    for model_id in result.deployment_config:
        letters[model_id] = string.ascii_uppercase[len(letters) % 26]
    if result.primary_model_id:
        lines.append(f"primary model: {result.primary_model_id}")
    if not result.gpu_allocation:
        lines.append(f"No shape fits: {result.error_message}")
    catalog_shapes = bundled_catalog().shapes
    for shape_name, shape_plan in result.gpu_allocation.items():
        shape = catalog_shapes.find(shape_name)
        gpu = ""
        if shape and shape.gpu_specs:
            gpu = f"{shape.gpu_count} × {shape.gpu_specs.gpu_type} {shape.per_gpu_memory_in_gbs:g} GB"
        cells = [letters[m.ocid] for m in shape_plan.models for _ in range(m.gpu_count)]
        cells += ["·"] * (shape_plan.total_gpus_available - len(cells))
        lines.append("")
        lines.append(f"{shape_name}  ({gpu})  uses {shape_plan.used_gpus}/{shape_plan.total_gpus_available} GPUs")
        lines.append("  GPUs  |" + "|".join(cells) + "|")
        for m in shape_plan.models:
            star = " *primary" if m.ocid == result.primary_model_id else ""
            est = " (estimated)" if m.estimated else ""
            mem = f"{m.gpu_memory_in_gbs:g} GB" if m.gpu_memory_in_gbs else ""
            params = m.parameters.get("VLLM_PARAMS", "")
            name = m.model_name or m.ocid
            row = f"  {letters[m.ocid]} {name:<44} {m.gpu_count} GPU  {mem:>7}{est}{star}  {params}"
            lines.append(row.rstrip())
        for note in shape_plan.notes:
            lines.append(f"  note: {note}")
    hidden = 0
    if result.incompatible_shapes:
        lines.append("")
        lines.append("Shapes that cannot hold these models:")
        for shape_name, reasons in result.incompatible_shapes.items():
            if (
                not show_all
                and all("has no multi_model_deployment entry" in r for r in reasons)
                and len(reasons) == len(result.deployment_config)
            ):
                hidden += 1
                continue
            lines.append(f"  {shape_name}: " + "; ".join(reasons))
        if hidden:
            lines.append(f"  (+{hidden} shapes no selected model is configured for; --all shows them)")
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines).lstrip("\n")


# --------------------------------------------------------------------------------------------------
# Commands


def cmd_list_shapes(args: argparse.Namespace) -> str:
    shapes = bundled_catalog().shapes
    out = [
        {
            "core_count": s.core_count,
            "memory_in_gbs": s.memory_in_gbs,
            "name": s.name,
            "shape_series": s.shape_series,
            "gpu_specs": s.gpu_specs.model_dump() if s.gpu_specs else None,
        }
        for s in shapes
    ]
    return _dump(out)


def _plan_from_args(args: argparse.Namespace) -> Plan:
    custom = _custom_models(args.model_config or [])
    inputs = _model_inputs(_model_ids(args.model_ids), custom)
    catalog = bundled_catalog()
    offered = catalog.shapes
    if getattr(args, "shape", None):
        offered = ShapeCatalog([catalog.shapes.get(args.shape)])
    result = plan(inputs, offered, _canonical_primary(args.primary_model_id, inputs))
    for warning in catalog.config_warnings:
        if any(warning.startswith(f"service model {m.model_id}:") for m in inputs):
            result.warnings.append(warning)
    return result


def cmd_get_config(args: argparse.Namespace) -> str:
    return _dump(_plan_from_args(args))


def cmd_plan(args: argparse.Namespace) -> str:
    result = _plan_from_args(args)
    return _dump(result) if args.json else render_plan(result, args.all)


def cmd_validate(args: argparse.Namespace) -> str:
    validated = _validated(args)
    return _dump(
        {
            "instance_shape": validated.shape.name,
            "models": [m.model_dump() for m in validated.models],
            "used_gpus": validated.used_gpus,
            "warnings": validated.warnings,
        }
    )


def cmd_payload(args: argparse.Namespace) -> str:
    validated = _validated(args)
    spec = validated.spec
    # The bundled catalog knows no artifact locations: the preview names them for the OCI platform to fill.
    paths = {m.model_id: f"<artifact path of {m.model_id}>" for m in validated.models}
    compartment = spec.compartment_id or PLACEHOLDER_COMPARTMENT
    project = spec.project_id or PLACEHOLDER_PROJECT
    image = spec.container_image_uri or DEFAULT_IMAGE
    out: dict[str, Any] = {"warnings": validated.warnings}
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


def cmd_model_list(args: argparse.Namespace) -> str:
    models = bundled_catalog().models
    if args.json:
        return _dump(models)
    return "\n".join(
        f"{m.id:<52} {m.task:<20} {'' if m.parameter_count_b is None else f'{m.parameter_count_b:g}B'}" for m in models
    )


def cmd_config_check(args: argparse.Namespace) -> str:
    loaded = load_deployment_config_file(args.path, bundled_catalog().shapes)
    summary = {s: [e.gpu_count for e in c.multi_model_deployment] for s, c in loaded.config.configuration.items()}
    return _dump({"ok": True, "multi_model_gpu_counts": summary, "warnings": loaded.warnings})


def _add_plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model_ids", required=True, help="JSON list or comma-separated model ids/names")
    p.add_argument("--primary_model_id", help="favour this model: it gets at least as many GPUs as any other")
    p.add_argument("--compartment_id", help="accepted for ADS compatibility (bundled catalog: ignored)")
    p.add_argument(
        "--model_config",
        action="append",
        metavar="ID=PATH",
        help="add your own model with its deployment_config.json (repeatable)",
    )


def _add_create_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", required=True, help='JSON list: [{"model_id": …, "gpu_count": 1, "model_name": …}]')
    p.add_argument("--instance_shape", required=True)
    p.add_argument("--display_name", required=True)
    p.add_argument("--deployment_type", choices=["MULTI", "STACKED", "SINGLE"])
    p.add_argument("--description")
    p.add_argument("--container_image_uri")
    p.add_argument("--compartment_id")
    p.add_argument("--project_id")
    p.add_argument("--instance_count", type=int)
    p.add_argument("--log_group_id")
    p.add_argument("--access_log_id")
    p.add_argument("--predict_log_id")
    p.add_argument("--web_concurrency", type=int)
    p.add_argument("--server_port", type=int)
    p.add_argument("--health_check_port", type=int)
    p.add_argument("--env_var", help="JSON object of environment variables")
    p.add_argument("--private_endpoint_id")
    p.add_argument("--primary_model_id")
    p.add_argument("--model_config", action="append", metavar="ID=PATH")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aqua-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"aqua-lab {__version__}")
    verbs = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)

    deployment = verbs.add_parser("deployment", help="shapes, multi-model configs, deployment requests")
    dverbs = deployment.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = dverbs.add_parser("list_shapes", help="GPU shapes with their GPU specs (JSON)")
    p.add_argument("--compartment_id")
    p.set_defaults(run=cmd_list_shapes)
    p = dverbs.add_parser(
        "get_multimodel_deployment_config",
        help="configs and GPU allocation on every compatible shape (JSON, ADS format + reasons)",
    )
    _add_plan_args(p)
    p.set_defaults(run=cmd_get_config)
    p = dverbs.add_parser("validate", help="check a deployment request like `ads aqua deployment create` takes")
    _add_create_args(p)
    p.set_defaults(run=cmd_validate)
    p = dverbs.add_parser("payload", help="the OCI model-group and model-deployment request bodies, without sending")
    _add_create_args(p)
    p.set_defaults(run=cmd_payload)

    p = verbs.add_parser("plan", help="per-shape GPU split table for some models")
    _add_plan_args(p)
    p.add_argument("--shape", help="only this shape")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--all", action="store_true", help="list every incompatible shape")
    p.set_defaults(run=cmd_plan)

    model = verbs.add_parser("model", help="the model catalog")
    mverbs = model.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = mverbs.add_parser("list", help="service models the bundled catalog knows")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_model_list)

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
        print(
            f"aqua-lab: error: {'; '.join(str(p) for p in exc.problems) if len(exc.problems) > 1 else exc}",
            file=sys.stderr,
        )
        return 2
    except AquaLabError as exc:
        print(f"aqua-lab: error: {exc}", file=sys.stderr)
        return 2
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
