"""Evaluation verbs: ``create`` (local: the models of a deployment scored side by side here; oci: one
job for one model), and for evaluations the platform runs itself (``--platform local``) ``list``,
``get``, ``status``, ``report``, ``cancel``, ``delete``; ``metrics`` lists what ``--metrics`` accepts."""

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


def cmd_evaluation_list(args: argparse.Namespace) -> str:
    return dump(service_for(args).list_evaluations())


def cmd_evaluation_get(args: argparse.Namespace) -> str:
    return dump(service_for(args).get_evaluation(args.evaluation_id))


def cmd_evaluation_status(args: argparse.Namespace) -> str:
    return dump(service_for(args).evaluation_status(args.evaluation_id))


def cmd_evaluation_cancel(args: argparse.Namespace) -> str:
    return dump(service_for(args).cancel_evaluation(args.evaluation_id))


def cmd_evaluation_delete(args: argparse.Namespace) -> str:
    return dump(service_for(args).delete_evaluation(args.evaluation_id))


def cmd_evaluation_report(args: argparse.Namespace) -> str:
    return service_for(args).evaluation_report(args.evaluation_id, args.model, args.format)


def cmd_evaluation_metrics(args: argparse.Namespace) -> str:
    return dump(service_for(args).supported_metrics())


def add_run_verbs(everbs: argparse._SubParsersAction) -> None:
    """The verbs after ``create``: evaluations the platform runs itself (``--platform local``)."""
    for verb, run, text in (
        ("get", cmd_evaluation_get, "an evaluation's state and per-model progress"),
        ("status", cmd_evaluation_status, "state, rows done/total and ETA, overall and per model (the light poll)"),
        ("cancel", cmd_evaluation_cancel, "stop a running evaluation"),
        ("delete", cmd_evaluation_delete, "stop and forget an evaluation (its reports stay)"),
    ):
        p = everbs.add_parser(verb, help=text)
        add_platform(p, "local")
        p.add_argument("--evaluation_id", required=True)
        p.set_defaults(run=run)
    p = everbs.add_parser("list", help="evaluations")
    add_platform(p, "local")
    p.set_defaults(run=cmd_evaluation_list)
    p = everbs.add_parser("report", help="a model's report, or the comparison of every model")
    add_platform(p, "local")
    p.add_argument("--evaluation_id", required=True)
    p.add_argument("--model", help="a served name (default: the comparison of all models)")
    p.add_argument("--format", choices=("json", "html"), default="json")
    p.set_defaults(run=cmd_evaluation_report)
    p = everbs.add_parser("metrics", help="the metrics --metrics accepts, with their args")
    add_platform(p, "local")
    p.set_defaults(run=cmd_evaluation_metrics)


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab evaluation create|list|get|status|report|cancel|delete|metrics``."""
    evaluation = verbs.add_parser("evaluation", help="evaluate the models of a deployment")
    everbs = evaluation.add_subparsers(dest="verb", required=True, parser_class=Parser)
    p = everbs.add_parser(
        "create",
        help="evaluate a deployment's models on a dataset (local: every model, or model_parameters.model, "
        "as one comparison; oci: one job for model_parameters.model)",
    )
    add_platform(p, "oci")
    for option in (*REQUIRED, "model_parameters"):
        p.add_argument(f"--{option}", required=True)
    for option in (*TEXT, "metrics"):
        p.add_argument(f"--{option}")
    for option, kind in TYPED.items():
        p.add_argument(f"--{option}", type=kind)
    add_bool(p, "--force_overwrite", "overwrite an existing report (True|False, as ADS takes it)")
    p.set_defaults(run=cmd_evaluation_create)
    add_run_verbs(everbs)
