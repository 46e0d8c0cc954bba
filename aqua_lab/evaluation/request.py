"""Check an ``evaluation create`` request (ADS's options) against the deployment it evaluates, for
platforms that run the evaluation themselves: which models, which metrics.  Pure."""

from __future__ import annotations

from typing import Any

from ..domain import Deployment, EvaluationSpec
from ..errors import InvalidInput, Problem
from ..inference.protocol import model_parameter_problems
from .metrics import check_metrics, pairwise_problems


def evaluation_plan(spec: EvaluationSpec, deployment: Deployment) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """(served names to evaluate, metrics with their args).  Without ``model_parameters.model`` every
    model of the deployment is evaluated, as one comparison; with it, that one.  All problems at once."""
    problems = []
    names = deployment.served_names()
    model = spec.model_parameters.get("model")
    if model is not None and model not in names:
        problems.append(
            Problem("model_parameters.model", f"{model!r} is not served by {deployment.id}", f"use one of {names}")
        )
    if deployment.state not in ("ACTIVE", "NEEDS_ATTENTION"):
        problems.append(
            Problem("evaluation_source_id", f"the deployment is {deployment.state}", "evaluate an ACTIVE deployment")
        )
    if spec.report_path.startswith("oci://"):
        problems.append(
            Problem(
                "report_path",
                "an Object Storage path: aqua_lab's runner writes its reports on this machine",
                "give a directory on this machine",
            )
        )
    problems += model_parameter_problems(spec.model_parameters)  # the rules every model call has
    try:
        metrics = check_metrics(spec.metrics)
    except InvalidInput as exc:
        problems += exc.problems
        metrics = []
    evaluated = [model] if model else names
    problems += pairwise_problems(spec.metrics, evaluated, model is not None)
    if not spec.metrics:
        problems.append(Problem("metrics", "no metric chosen", '[{"name": "rouge", "args": {}}] for example'))
    if problems:
        raise InvalidInput(problems)
    return evaluated, metrics
