"""Evaluation verbs: submit an evaluation job for one model of a deployment."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from ..domain import EvaluationSpec
from ..errors import InvalidInput
from .common import Parser, add_bool, add_platform, dump, json_arg, service_for

#: the options, each written once: for the parser and for the request (JSON ones are parsed first)
REQUIRED = ("evaluation_source_id", "evaluation_name", "dataset_path", "report_path")
TEXT = (
    "shape_name",
    "compartment_id",
    "project_id",
    "evaluation_description",
    "experiment_id",
    "experiment_name",
    "experiment_description",
    "log_group_id",
    "log_id",
    "container_image_uri",
)
TYPED = {"block_storage_size": int, "memory_in_gbs": float, "ocpus": float}


def cmd_evaluation_create(args: argparse.Namespace) -> str:
    raw: dict[str, Any] = {"model_parameters": json_arg(args.model_parameters, "--model_parameters")}
    for option in (*REQUIRED, *TEXT, *TYPED):
        if getattr(args, option, None) is not None:
            raw[option] = getattr(args, option)
    if args.metrics:
        raw["metrics"] = json_arg(args.metrics, "--metrics")
    raw["force_overwrite"] = args.force_overwrite
    try:
        spec = EvaluationSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="--") from None
    return dump(service_for(args).create_evaluation(spec))


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab evaluation create``."""
    evaluation = verbs.add_parser("evaluation", help="evaluate a model of a deployment")
    everbs = evaluation.add_subparsers(dest="verb", required=True, parser_class=Parser)
    p = everbs.add_parser("create", help="submit an evaluation job (one per model of a multi-model deployment)")
    add_platform(p, "oci")
    for option in (*REQUIRED, "model_parameters"):
        p.add_argument(f"--{option}", required=True)
    for option in (*TEXT, "metrics"):
        p.add_argument(f"--{option}")
    for option, kind in TYPED.items():
        p.add_argument(f"--{option}", type=kind)
    add_bool(p, "--force_overwrite", "overwrite an existing report (True|False, as ADS takes it)")
    p.set_defaults(run=cmd_evaluation_create)
