"""Evaluation verbs with ``ads aqua evaluation``'s option names: ``create``, ``list``, ``get``,
``status`` (ADS's ``get_status``), ``report``, ``load_metrics`` (ADS's, from a model's report.json),
``cancel``, ``delete``, and ``metrics`` (ADS's ``get_supported_metrics``: what ``--metrics``
accepts).  Local: the models of a deployment scored side by side on this machine; OCI: one
evaluation model + job + job run per model, as ADS stores them (``model_parameters.model`` omitted:
one per served model, grouped as one comparison whose id is the first member's OCID).

Output: ``create``, ``get``, ``cancel`` and ``delete`` print one JSON object with the fields the seed
documents for ``evaluation create`` (``id``, ``name``, ``aqua_service_model``, ``state``,
``description``, ``created_on``, ``created_by``, ``endpoint``, ``console_link``, ``shape_info``
{instance_shape, instance_count, ocpus, memory_in_gbs}, ``tags``), then the fields ADS 2.16 really
prints (its ``AquaEvaluationSummary``: ``lifecycle_state``, ``lifecycle_details``, ``time_created``,
``console_url``, ``experiment``/``source``/``job`` {id, name, url}, ``parameters``; its
``AquaEvaluationDetail``'s ``log_group``/``log``), then aqua_lab's own
(``model``, ``models`` per-model rows, ``report_path``, ``metrics`` …).  ``list`` prints one such
object per evaluation (ADS's framing; ``--array`` for one JSON array).  ``status`` prints ADS's
``get_status`` fields (``id``, ``lifecycle_state``, ``lifecycle_details``, ``log_id``, ``log_url``,
``loggroup_id``, ``loggroup_url``) plus ``models``.

Differences from ADS that remain on purpose: the seed's example shows a model deployment OCID as the
``id`` and ``endpoint``/``console_link`` of a deployment — here ``id`` is the evaluation model's OCID as
ADS really returns it, ``endpoint`` the evaluated deployment's and ``console_link`` the evaluation
model's page; ``state`` keeps ACCEPTED where ADS folds it into IN_PROGRESS; ``report`` prints the
report itself (JSON or HTML) where ADS's ``download_report`` returns it base64-encoded in
``{"evaluation_id", "content"}``; an evaluation without ``--experiment_id``/``--experiment_name`` is
accepted (ADS refuses it, but the seed's own example passes neither) and joins no experiment."""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any

from ..domain import Evaluation, EvaluationSpec
from .common import (
    DEFAULT_PLATFORM,
    Parser,
    add_array,
    add_bool,
    add_platform,
    dump,
    dump_items,
    json_arg,
    service_for,
    validated,
)
from .hints import say_which_platform
from .values import real_arg, whole_arg

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
TYPED = {"block_storage_size": whole_arg, "memory_in_gbs": real_arg, "ocpus": real_arg}


EMPTY_REF = {"id": "", "name": "", "url": ""}


def ads_view(e: Evaluation) -> dict[str, Any]:
    """The seed's fields, then ADS's AquaEvaluationSummary fields, then aqua_lab's own."""
    ours = e.model_dump(mode="json")
    seed = {
        "id": e.id,
        "name": e.name,
        "aqua_service_model": e.aqua_service_model,
        "state": e.state,
        "description": e.description,
        "created_on": e.created_on,
        "created_by": e.created_by,
        "endpoint": e.endpoint,
        "console_link": e.console_url,
        "shape_info": e.shape_info,
        "tags": e.tags,
    }
    ads = {
        "lifecycle_state": e.state,
        "lifecycle_details": e.details or "",
        "time_created": e.created_on,
        "console_url": e.console_url,
        "experiment": ours["experiment"] or EMPTY_REF,
        "source": ours["source"] or {**EMPTY_REF, "id": e.deployment_id},
        "job": ours["job"] or EMPTY_REF,
        "parameters": e.parameters,
        # AquaEvaluationDetail's: empty identifiers, not null, when the job logs nowhere
        "log_group": ours["log_group"] or EMPTY_REF,
        "log": ours["log"] or EMPTY_REF,
    }
    return {**seed, **ads, **{k: v for k, v in ours.items() if k not in seed and k not in ads}}


def cmd_evaluation_create(args: argparse.Namespace) -> str:
    raw: dict[str, Any] = {"model_parameters": json_arg(args.model_parameters, "--model_parameters")}
    for option in (*REQUIRED, *TEXT, *TYPED):
        if getattr(args, option, None) is not None:
            raw[option] = getattr(args, option)
    if args.metrics:
        raw["metrics"] = json_arg(args.metrics, "--metrics")
    raw["force_overwrite"] = args.force_overwrite
    if args.runner:
        raw["runner"] = args.runner
    spec = validated(EvaluationSpec, raw)
    return dump(ads_view(service_for(args).create_evaluation(spec)))


def cmd_evaluation_list(args: argparse.Namespace) -> str:
    evaluations = service_for(args).list_evaluations()
    say_which_platform(args)
    return dump_items([ads_view(e) for e in evaluations], args)


def cmd_evaluation_get(args: argparse.Namespace) -> str:
    return dump(ads_view(service_for(args).get_evaluation(args.evaluation_id)))


def cmd_evaluation_status(args: argparse.Namespace) -> str:
    return dump(service_for(args).evaluation_status(args.evaluation_id))


def cmd_evaluation_cancel(args: argparse.Namespace) -> str:
    return dump(ads_view(service_for(args).cancel_evaluation(args.evaluation_id)))


def cmd_evaluation_delete(args: argparse.Namespace) -> str:
    return dump(ads_view(service_for(args).delete_evaluation(args.evaluation_id)))


def cmd_evaluation_report(args: argparse.Namespace) -> str:
    return service_for(args).evaluation_report(args.evaluation_id, args.model, args.format)


def summary_markdown(report: dict[str, Any]) -> str:
    """A report's summary as the markdown table ``load_metrics`` carries (base64) in ``report``."""
    lines = [f"# Evaluation {report.get('evaluation_name') or ''}: {report.get('model') or ''}".rstrip(": ")]
    lines += ["", "| metric | score |", "|---|---|"]
    lines += [f"| {m.get('label') or m.get('metric')} | {m.get('score')} |" for m in report["metric_summary_result"]]
    return "\n".join(lines) + "\n"


def load_metrics_view(evaluation_id: str, report: dict[str, Any]) -> dict[str, Any]:
    """ADS's ``load_metrics`` answer (``AquaEvalMetrics``) from a model's report.json."""
    results = report.get("metric_results") or {}
    return {
        "id": evaluation_id,
        "report": base64.b64encode(summary_markdown(report).encode()).decode(),
        "metric_results": [
            {
                "key": r.get("key") or name,
                "name": r.get("name") or r.get("label") or name,
                "description": r.get("description") or r.get("note") or "",
            }
            for name, r in results.items()
        ],
        "metric_summary_result": [
            {"metric": m.get("metric", ""), "score": m.get("score", ""), "grade": m.get("grade") or ""}
            for m in report.get("metric_summary_result") or []
        ],
    }


def cmd_evaluation_load_metrics(args: argparse.Namespace) -> str:
    """One model's metrics; without ``--model`` the evaluation's own (a comparison's first model),
    as ADS reads one evaluation model."""
    service = service_for(args)
    model = args.model or service.get_evaluation(args.evaluation_id).models[0].model
    report = json.loads(service.evaluation_report(args.evaluation_id, model, "json"))
    return dump(load_metrics_view(args.evaluation_id, report))


def cmd_evaluation_metrics(args: argparse.Namespace) -> str:
    return dump(service_for(args).supported_metrics())


def add_id(p: argparse.ArgumentParser) -> None:
    """``--evaluation_id`` (ADS's CLI: ``--eval_id``), and where OCI works, its compartment."""
    p.add_argument("--evaluation_id", "--eval_id", dest="evaluation_id", required=True)
    p.add_argument("--compartment_id", help="OCI: the compartment to work in (default: the configured one)")


def add_run_verbs(everbs: argparse._SubParsersAction) -> None:
    """The verbs after ``create``; an ``ocid1.`` id selects OCI by itself."""
    for verb, aliases, run, text in (
        ("get", [], cmd_evaluation_get, "an evaluation's state, details and per-model rows"),
        ("status", ["get_status"], cmd_evaluation_status, "ADS's get_status (state, log links) + rows done, ETA"),
        ("cancel", [], cmd_evaluation_cancel, "stop a running evaluation (OCI: cancel its job runs)"),
        (
            "delete",
            [],
            cmd_evaluation_delete,
            "stop and forget an evaluation (OCI: its job runs, jobs and evaluation models); its reports stay",
        ),
    ):
        p = everbs.add_parser(verb, aliases=aliases, help=text)
        add_platform(p, DEFAULT_PLATFORM)
        add_id(p)
        p.set_defaults(run=run)
    p = everbs.add_parser("list", help="evaluations, one JSON object each (ADS's framing; --array for one list)")
    add_platform(p, DEFAULT_PLATFORM)
    p.add_argument("--compartment_id", help="OCI: the compartment to list (default: the configured one)")
    add_array(p)
    p.set_defaults(run=cmd_evaluation_list)
    p = everbs.add_parser(
        "report", aliases=["download_report"], help="a model's report, or the comparison of every model"
    )
    add_platform(p, DEFAULT_PLATFORM)
    add_id(p)
    p.add_argument("--model", help="a served name (default: the comparison of all models)")
    p.add_argument("--format", choices=("json", "html"), default="json")
    p.set_defaults(run=cmd_evaluation_report)
    p = everbs.add_parser(
        "load_metrics", help="ADS's load_metrics: a model's metric names and summary scores (report: base64 markdown)"
    )
    add_platform(p, DEFAULT_PLATFORM)
    add_id(p)
    p.add_argument("--model", help="a served name (default: the evaluation's own model, a comparison's first)")
    p.set_defaults(run=cmd_evaluation_load_metrics)
    p = everbs.add_parser(
        "metrics", aliases=["get_supported_metrics"], help="the metrics --metrics accepts, with their args"
    )
    add_platform(p, DEFAULT_PLATFORM)
    p.set_defaults(run=cmd_evaluation_metrics)


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab evaluation create|list|get|status|report|cancel|delete|metrics``."""
    evaluation = verbs.add_parser("evaluation", help="evaluate the models of a deployment")
    everbs = evaluation.add_subparsers(dest="verb", required=True, parser_class=Parser)
    p = everbs.add_parser(
        "create",
        help="evaluate a deployment's models on a dataset: model_parameters.model, else every model of the "
        "deployment as one comparison (oci: one evaluation model + job per model, as ADS stores them)",
    )
    add_platform(p, "oci")
    for option in (*REQUIRED, "model_parameters"):
        p.add_argument(f"--{option}", required=True)
    for option in (*TEXT, "metrics"):
        p.add_argument(f"--{option}")
    for option, kind in TYPED.items():
        p.add_argument(f"--{option}", type=kind)
    add_bool(p, "--force_overwrite", "overwrite an existing report (True|False, as ADS takes it)")
    p.add_argument(
        "--runner",
        choices=("service", "notebook"),
        help="service (default: AQUA's evaluation job on OCI) or notebook (aqua_lab's runner here, calling the "
        "deployment from a job on this machine: judge metrics on OCI too)",
    )
    p.set_defaults(run=cmd_evaluation_create)
    add_run_verbs(everbs)
