"""What every verb group of the CLI shares: reading JSON and id options, the service, output,
progress, and the options of a deployment request (listed once, for the parser and the request)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from ..domain import Deployment, DeploymentSpec, ModelInput, ValidatedDeployment
from ..errors import InvalidInput, Problem
from ..service import PLATFORMS, AquaLabService, descriptions
from . import scaling

#: ``ads aqua deployment create`` options that pass straight into the request
REQUEST_TEXT_OPTIONS = (
    "description",
    "container_image_uri",
    "compartment_id",
    "project_id",
    "log_group_id",
    "access_log_id",
    "predict_log_id",
    "private_endpoint_id",
    "primary_model_id",
)
REQUEST_INT_OPTIONS = ("instance_count", "web_concurrency", "server_port", "health_check_port")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def json_arg(text: str, option: str) -> Any:
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


def model_ids(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        ids = json_arg(text, "--model_ids")
    else:
        ids = [p.strip() for p in text.split(",") if p.strip()]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput(Problem("--model_ids", "expected a list of model ids", 'e.g. \'["id1", "id2"]\''))
    if not ids:
        raise InvalidInput(Problem("--model_ids", "no model ids given", "pass one or more model ids"))
    return ids


def custom_models(pairs: Sequence[str] | None) -> list[ModelInput]:
    """``--model_config ID=PATH``: plan with a model of your own and its deployment_config.json."""
    custom = []
    for pair in pairs or []:
        model_id, sep, path = pair.partition("=")
        if not sep or not model_id or not path:
            raise InvalidInput(
                Problem("--model_config", f"{pair!r} is not ID=PATH", "e.g. my-model=config/deployment_config.json")
            )
        model, warnings = AquaLabService.custom_model(model_id, path)
        for warning in warnings:
            print(f"aqua-lab: warning: {warning}", file=sys.stderr)
        custom.append(model)
    return custom


def service_for(args: argparse.Namespace) -> AquaLabService:
    return AquaLabService(args.platform)


def spec_from(args: argparse.Namespace, default_shape: str | None = None) -> DeploymentSpec:
    raw: dict[str, Any] = {
        "models": json_arg(args.models, "--models"),
        "instance_shape": args.instance_shape or default_shape,
        "display_name": args.display_name,
    }
    for option in ("deployment_type", *REQUEST_TEXT_OPTIONS, *REQUEST_INT_OPTIONS):
        value = getattr(args, option, None)
        if value is not None:
            raw[option] = value
    if args.env_var:
        raw["env_var"] = json_arg(args.env_var, "--env_var")
    raw.update(scaling.scaling_fields(args))
    if raw["instance_shape"] is None:
        raise InvalidInput(Problem("--instance_shape", "missing", "name the shape, e.g. --instance_shape VM.GPU.A10.2"))
    try:
        return DeploymentSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="--") from None


def validated_request(args: argparse.Namespace, service: AquaLabService) -> ValidatedDeployment:
    """The request of validate / payload / create, checked (with any --model_config models)."""
    return service.validate(spec_from(args, service.default_shape()), custom_models(args.model_config))


def dump(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, indent=2)


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


def add_platform(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=default,
        help="; ".join(f"{name}: {text}" for name, text in descriptions().items()) + f" (default: {default})",
    )


def add_request_options(p: argparse.ArgumentParser, platform: str) -> None:
    add_platform(p, platform)
    p.add_argument("--models", required=True, help='JSON list: [{"model_id": …, "gpu_count": 1, "model_name": …}]')
    p.add_argument("--instance_shape", help="the shape (local: defaults to this machine)")
    p.add_argument("--display_name", required=True)
    p.add_argument("--deployment_type", choices=["MULTI", "STACKED", "SINGLE"])
    for option in REQUEST_TEXT_OPTIONS:
        p.add_argument(f"--{option}")
    for option in REQUEST_INT_OPTIONS:
        p.add_argument(f"--{option}", type=int)
    p.add_argument("--env_var", help="JSON object of environment variables")
    p.add_argument("--model_config", action="append", metavar="ID=PATH")
    scaling.add_scaling_options(p)


def add_deployment_id(p: argparse.ArgumentParser) -> None:
    add_platform(p, "local")
    p.add_argument("--model_deployment_id", required=True)
