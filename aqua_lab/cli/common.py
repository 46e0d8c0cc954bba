"""What every verb group of the CLI shares: reading JSON and id options, the service, output,
progress, and the options of a deployment request (listed once, for the parser and the request).

Written the way ``ads aqua`` is called: every option takes both spellings (``--env_var`` and
``--env-var``), JSON options also take the Python literals ADS's CLI (python-fire) reads, boolean
flags take ``True``/``False``, and the platform follows the ids (an ``ocid1.`` id means OCI)."""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..domain import Deployment, DeploymentSpec, ModelInput, ValidatedDeployment
from ..errors import InvalidInput, Problem
from ..service import PLATFORMS, AquaLabService, PlatformSettings, descriptions
from . import byoc_options, scaling_options
from .values import real_arg, whole_arg

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
#: ADS's size of a flex shape (the payload's modelDeploymentInstanceShapeConfigDetails)
FLEX_OPTIONS = ("ocpus", "memory_in_gbs")


M = TypeVar("M", bound=BaseModel)

#: where the default platform comes from when ``--platform`` is not given
PLATFORM_ENV = "AQUA_LAB_PLATFORM"
#: the platform of every verb that works anywhere when neither ``--platform``, ``$AQUA_LAB_PLATFORM``
#: nor an OCID chose one — the server's default too (``c.AquaLab.platform``), so a plan from the CLI,
#: from ``POST plans`` and from the sidebar is made for the platform their deploy goes to.  A model
#: only OCI's catalog knows gets a hint naming ``--platform bundled`` (cli/hints.py).
DEFAULT_PLATFORM = "local"

#: exit statuses (documented in docs/cli.md): bad input is 2, like argparse's own
EXIT_FAILED = 1  # the deployment ended FAILED or NEEDS_ATTENTION
EXIT_TIMEOUT = 3  # still not settled when --timeout ran out
EXIT_BUG = 70  # an error no check foresaw (sysexits' EX_SOFTWARE): one line, the traceback with AQUA_LAB_DEBUG=1
DEBUG_ENV = "AQUA_LAB_DEBUG"


class CommandFailed(Exception):
    """A verb that did its work but whose outcome is a failure: its output is still printed."""

    def __init__(self, output: str, message: str, code: int):
        super().__init__(message)
        self.output, self.code = output, code


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001 — argparse's signature
        return super().parse_known_args(self._ads_spellings(sys.argv[1:] if args is None else args), namespace)

    def _ads_spellings(self, args: Sequence[str]) -> list[str]:
        """``--env-var`` → ``--env_var`` (and ``--model-ids=…``) where only the other spelling is an
        option here: the seed's own examples use both."""
        known = self._option_string_actions
        out = []
        for arg in args:
            if arg.startswith("--") and arg != "--":
                name, sep, value = arg.partition("=")
                if name not in known:
                    for other in (name[:2] + name[2:].replace("-", "_"), name[:2] + name[2:].replace("_", "-")):
                        if other in known:
                            arg = other + sep + value
                            break
            out.append(arg)
        return out


def bool_arg(text: str) -> bool:
    """``--force_overwrite True``/``=False`` as ADS's CLI takes them (and yes/no, 1/0)."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "y", "on"):
        return True
    if value in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def add_bool(p: argparse.ArgumentParser, option: str, help_text: str | None = None) -> None:
    """A flag that also takes a value: ``--x``, ``--x True``, ``--x=False``."""
    p.add_argument(option, type=bool_arg, nargs="?", const=True, default=False, metavar="True|False", help=help_text)


def validated(model: type[M], raw: dict[str, Any], options: dict[str, str] | None = None) -> M:
    """``raw`` as ``model``; its problems named by the option a user gave (``--temperature``, or the
    option ``options`` maps a field to, e.g. ``messages`` → ``--prompt``)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise cli_problems(exc, options) from None


def cli_problems(exc: ValidationError, options: dict[str, str] | None = None) -> InvalidInput:
    """pydantic's errors as one-line problems on CLI options (``models[0].gpus`` → ``--models[0].gpus``);
    a rule across options (the field ``body``) names them in its own message."""
    problems = []
    for p in InvalidInput.from_validation(exc).problems:
        field = "" if p.field == "body" else _option_of(p.field, options) or f"--{p.field}"
        problems.append(Problem(field, p.message, p.fix))
    return InvalidInput(problems)


def _option_of(field: str, options: dict[str, str] | None) -> str | None:
    return (options or {}).get(field.split(".", 1)[0].split("[", 1)[0])


def on_options(exc: InvalidInput, options: dict[str, str]) -> InvalidInput:
    """A service's problems (named by their REST fields) named by the options that set those fields
    (``model`` → ``--model_name``); a field no option sets keeps its name."""
    return InvalidInput([Problem(_option_of(p.field, options) or p.field, p.message, p.fix) for p in exc.problems])


def json_arg(text: str, option: str) -> Any:
    """JSON, or the Python literal ADS's CLI reads (``"[{'model_id': 'x', 'gpu_count': 1}]"``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, (list, dict)):
            return value
        raise InvalidInput(
            Problem(
                option,
                f"not valid JSON ({exc.msg} at column {exc.colno})",
                'quote the JSON in single quotes, e.g. \'["id1", "id2"]\' or \'{"KEY": "value"}\'',
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


def _mentions_ocid(args: argparse.Namespace) -> bool:
    ids = (
        "model_deployment_id",
        "models",
        "model_ids",
        "evaluation_source_id",
        "evaluation_id",
        "primary_model_id",
        "model_group_id",
    )
    return any("ocid1." in str(getattr(args, name, None) or "") for name in ids)


def resolve_platform(args: argparse.Namespace) -> str:
    """``--platform``, else ``AQUA_LAB_PLATFORM``, else OCI when an id given is an OCID, else the
    verb's own default; remembered on ``args`` (errors then say how the platform was chosen)."""
    if getattr(args, "platform", None):
        args.platform_reason = "--platform"
        return args.platform
    env = os.environ.get(PLATFORM_ENV, "").strip()
    if env:
        if env not in PLATFORMS:
            raise InvalidInput(Problem(PLATFORM_ENV, f"unknown platform {env!r}", f"use one of {list(PLATFORMS)}"))
        args.platform, args.platform_reason = env, PLATFORM_ENV
    elif _mentions_ocid(args):
        args.platform, args.platform_reason = "oci", "an OCID given"
    else:
        args.platform, args.platform_reason = args.platform_default, "default"
    return args.platform


def service_for(args: argparse.Namespace) -> AquaLabService:
    """The service on the resolved platform; ``--compartment_id``/``--project_id`` set where OCI
    works, so no environment variable is needed when they are given."""
    platform = resolve_platform(args)
    compartment, project = getattr(args, "compartment_id", None), getattr(args, "project_id", None)
    if platform == "oci" and (compartment or project):
        return AquaLabService(platform, PlatformSettings(compartment_id=compartment, project_id=project))
    return AquaLabService(platform)


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
    for option in FLEX_OPTIONS:
        if getattr(args, option, None) is not None:
            raw[option] = getattr(args, option)
    raw.update(scaling_options.scaling_fields(args))
    raw.update(byoc_options.byoc_fields(args))
    if raw["instance_shape"] is None:
        raise InvalidInput(Problem("--instance_shape", "missing", "name the shape, e.g. --instance_shape VM.GPU.A10.2"))
    return validated(DeploymentSpec, raw)


def validated_request(args: argparse.Namespace, service: AquaLabService) -> ValidatedDeployment:
    """The request of validate / payload / create, checked (with any --model_config models)."""
    return service.validate(spec_from(args, service.default_shape()), custom_models(args.model_config))


def dump(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, indent=2)


def dump_items(items: Sequence[Any], args: argparse.Namespace, exclude: set[str] | None = None) -> str:
    """A list as ``ads aqua`` prints it — one JSON object after another, so ``| jq .name`` works —
    or, with ``--array``, as one JSON array."""
    rows = [i.model_dump(mode="json", exclude=exclude) if isinstance(i, BaseModel) else i for i in items]
    if getattr(args, "array", False):
        return json.dumps(rows, indent=2)
    return "\n".join(json.dumps(row, indent=4) for row in rows)


def add_array(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--array", action="store_true", help="print one JSON array instead of ADS's one JSON object per item"
    )


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
        help="; ".join(f"{name}: {text}" for name, text in descriptions().items())
        + f". Default: ${PLATFORM_ENV}, else oci when an id given is an OCID (ocid1.…), else {default}",
    )
    p.set_defaults(platform_default=default)


def add_request_options(p: argparse.ArgumentParser, platform: str) -> None:
    add_platform(p, platform)
    p.add_argument("--models", required=True, help='JSON list: [{"model_id": …, "gpu_count": 1, "model_name": …}]')
    p.add_argument("--instance_shape", help="the shape (local: defaults to this machine)")
    p.add_argument("--display_name", required=True)
    p.add_argument("--deployment_type", choices=["MULTI", "STACKED", "SINGLE", "HETEROGENEOUS"])
    for option in REQUEST_TEXT_OPTIONS:
        p.add_argument(f"--{option}")
    for option in REQUEST_INT_OPTIONS:
        p.add_argument(f"--{option}", type=whole_arg)
    p.add_argument("--env_var", help="JSON object of environment variables")
    p.add_argument("--model_config", action="append", metavar="ID=PATH")
    p.add_argument("--ocpus", type=real_arg, help="flex shapes (…Flex) only: the OCPUs of each instance, as ADS's")
    p.add_argument(
        "--memory_in_gbs", type=real_arg, help="flex shapes (…Flex) only: the memory of each instance in GB, as ADS's"
    )
    scaling_options.add_scaling_options(p)
    byoc_options.add_byoc_options(p)


def add_deployment_id(p: argparse.ArgumentParser) -> None:
    add_platform(p, DEFAULT_PLATFORM)
    p.add_argument("--model_deployment_id", required=True)
    # ADS's CLI takes them on every verb; here they only say where OCI looks (no env variable needed)
    p.add_argument("--compartment_id")
    p.add_argument("--project_id")
