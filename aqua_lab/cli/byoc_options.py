"""The bring-your-own-container options of ``deployment create`` (a HETEROGENEOUS group runs on the
user's image): ADS's ``--container_image_uri``, ``--cmd_var``, ``--server_port``,
``--health_check_port`` and ``--env_var``, plus the OCI payload's ``imageDigest`` and ``entrypoint``."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from ..errors import InvalidInput, Problem


def add_byoc_options(p: argparse.ArgumentParser) -> None:
    byoc = p.add_argument_group("your own container (BYOC; --deployment_type HETEROGENEOUS)")
    byoc.add_argument("--image_digest", help="pin --container_image_uri to this digest (sha256:…)")
    byoc.add_argument(
        "--entrypoint",
        help='the container\'s entrypoint: a JSON list (\'["python", "-m", "server"]\') or a command line',
    )
    byoc.add_argument("--cmd_var", help="the container's cmd, as ADS's --cmd_var: a JSON list or a command line")


def _words(text: str, option: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("["):  # meant as JSON: a broken list must not become a one-word command
            raise InvalidInput(
                Problem(option, f"not a valid JSON list ({exc.msg})", "check its quotes and brackets")
            ) from None
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise InvalidInput(Problem(option, f"is not a command line: {exc}", "quote it as a JSON list")) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(Problem(option, "must be a list of strings", 'e.g. \'["--model-repository", "/models"]\''))
    return value


def byoc_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if getattr(args, "image_digest", None):
        fields["image_digest"] = args.image_digest
    for option in ("entrypoint", "cmd_var"):
        if getattr(args, option, None) is not None:
            fields[option] = _words(getattr(args, option), f"--{option}")
    return fields
