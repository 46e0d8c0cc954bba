"""The URLs under ``<base_url>aqua/``: one row per verb, with what it takes and returns.

Each row's path template (``deployments/{deployment_id}``) is the OpenAPI path and, with its
parameters turned into named groups, the tornado pattern — so ``openapi.json`` and the server
cannot disagree.  A parameter matches one path segment unless :data:`.route.PARAM_PATTERNS` says
otherwise (model ids contain slashes); a row is a :class:`.route.Route`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..domain import (
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentConfig,
    DeploymentMetrics,
    DeploymentSpec,
    Evaluation,
    EvaluationConfig,
    EvaluationMetrics,
    EvaluationSpec,
    EvaluationStatus,
    MetricDescription,
    ModelGroupVersion,
    ModelState,
    Plan,
    RollbackRequest,
    ScalingChange,
    Shape,
    UploadedDataset,
    ValidationResult,
)
from ..service import PLATFORMS, OciCheck, OciChoice
from ..service.arena import MAX_RESAMPLES, SOURCES, BlindPair, BlindPairRequest, Leaderboard, Vote, VoteRequest
from ..service.datasets import DatasetRow, SavedDataset
from .handlers import (
    Activate,
    AdsCancelEvaluation,
    AdsDeploymentConfig,
    AdsEvaluationReport,
    AquaLabHandler,
    BlindPairs,
    CancelEvaluation,
    Chat,
    Compare,
    DatasetRows,
    Datasets,
    DatasetUploads,
    Deactivate,
    DeploymentLogs,
    DeploymentMetricsHandler,
    Deployments,
    DeploymentScaling,
    DeploymentVersions,
    EvaluationConfigHandler,
    EvaluationMetricsHandler,
    EvaluationReport,
    Evaluations,
    EvaluationStatusHandler,
    LeaderboardHandler,
    ModelConfig,
    Models,
    ModelStates,
    OneDataset,
    OneDeployment,
    OneEvaluation,
    OneModel,
    OneVote,
    Plans,
    Platforms,
    Rollback,
    Shapes,
    SupportedMetrics,
    Validate,
    Votes,
    VotesExport,
)
from .limits import DEFAULT_LOG_LINES, MAX_LOG_LINES, MAX_UPLOAD_BYTES
from .models import (
    ChatChunk,
    CompareChunk,
    CompareDone,
    CompareError,
    DataList,
    DatasetUploadRequest,
    EvaluationReportContent,
    Logs,
    PlanRequest,
    PlatformInfo,
    RegisterModelRequest,
    StreamError,
)
from .oci_settings import OciCheckHandler, OciSettings, OciSettingsHandler
from .openapi import openapi_document
from .route import Route, pattern_of  # noqa: F401 — pattern_of: callers read it from the table's module


class OpenApi(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(openapi_document(ROUTES, self.settings.get("base_url", "/")))


PLATFORM_QUERY: dict[str, str | dict[str, Any]] = {
    "platform": {
        "description": "platform to use; absent or empty: the server's c.AquaLab.platform",
        "type": "string",
        "enum": ["", *PLATFORMS],
    }
}
LINES_QUERY = {
    "description": f"how many lines from the end (default {DEFAULT_LOG_LINES})",
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_LOG_LINES,
}
SOURCE_QUERY: dict[str, Any] = {
    "description": "votes (people's blind votes), judge (the pairwise judge's verdicts) or both",
    "type": "string",
    "enum": list(SOURCES),
}

ROUTES = [
    Route(
        "GET",
        "platforms",
        Platforms,
        "platforms and which is the default",
        response=DataList[PlatformInfo],
    ),
    Route(
        "GET",
        "platforms/oci/settings",
        OciSettingsHandler,
        "the OCI configuration saved from the sidebar",
        response=OciSettings,
    ),
    Route(
        "PUT",
        "platforms/oci/settings",
        OciSettingsHandler,
        "save the OCI configuration (owner-only; empty fields keep the server's); the next OCI request uses it",
        request=OciChoice,
        response=OciSettings,
    ),
    Route(
        "POST",
        "platforms/oci/check",
        OciCheckHandler,
        "build the OCI platform from a configuration and try one cheap call: ok, or the field to fix and why",
        request=OciChoice,
        response=OciCheck,
    ),
    Route("GET", "shapes", Shapes, "shapes of a platform", response=DataList[Shape], query=PLATFORM_QUERY),
    Route(
        "GET",
        "deployments/shapes",
        Shapes,
        "shapes (ADS-compatible path)",
        response=DataList[Shape],
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "models",
        Models,
        "models of a platform",
        response=DataList[CatalogModel],
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "models/{model_id}/config",
        ModelConfig,
        "a model's deployment_config.json",
        response=DeploymentConfig,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "models",
        Models,
        "register a GGUF file, HF folder or GGUF LoRA adapter on the server's machine (local; 409 elsewhere)",
        request=RegisterModelRequest,
        response=CatalogModel,
        status=201,
        query=PLATFORM_QUERY,
    ),
    Route(
        "DELETE",
        "models/{model_id}",
        OneModel,
        "forget a registered model (its files stay); 409 while a deployment or an adapter uses it",
        response=CatalogModel,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "plans",
        Plans,
        "plan: compatible shapes, GPU split, reasons",
        request=PlanRequest,
        response=Plan,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/config/{model_ids}",
        AdsDeploymentConfig,
        "ADS-compatible: one id → that model's deployment_config.json; comma-separated ids → plan",
        response=Plan,
        query={**PLATFORM_QUERY, "primary_model_id": "favour this model"},
    ),
    Route(
        "GET",
        "deployments",
        Deployments,
        "deployments",
        response=DataList[Deployment],
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments",
        Deployments,
        "create a deployment (returns at once, CREATING)",
        request=DeploymentSpec,
        response=Deployment,
        status=201,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments/validate",
        Validate,
        "validate a deployment request without creating it",
        request=DeploymentSpec,
        response=ValidationResult,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}",
        OneDeployment,
        "one deployment with progress and per-model states (poll it while CREATING)",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "PUT",
        "deployments/{deployment_id}",
        OneDeployment,
        "replace the models of a deployment (OCI: live update; local: servers restart; 409 where impossible)",
        request=DeploymentSpec,
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "DELETE",
        "deployments/{deployment_id}",
        OneDeployment,
        "delete a deployment",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/activate",
        Activate,
        "start a deactivated deployment",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/deactivate",
        Deactivate,
        "stop a deployment, keeping it",
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/versions",
        DeploymentVersions,
        "the versions of the deployment's model group, oldest first, the live one marked (OCI; 409 elsewhere)",
        response=DataList[ModelGroupVersion],
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/rollback",
        Rollback,
        "back to an earlier version of the deployment's model group: a LIVE update to it (OCI; 409 elsewhere)",
        request=RollbackRequest,
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/models",
        ModelStates,
        "per-model states",
        response=DataList[ModelState],
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/logs",
        DeploymentLogs,
        "runtime log, or one model server's",
        response=Logs,
        query={**PLATFORM_QUERY, "model_name": "a served name", "lines": LINES_QUERY},
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/chat",
        Chat,
        "chat with one model: SSE (data: chunk, event: error, data: [DONE]) or JSON with stream=false",
        request=ChatRequest,
        response=dict,
        query=PLATFORM_QUERY,
        stream=True,
        events={"message": ChatChunk, "error": StreamError},
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/compare",
        Compare,
        "one prompt to several models, streamed side by side (data: {model, chunk}; event: done|error)",
        request=CompareRequest,
        query=PLATFORM_QUERY,
        stream=True,
        events={"message": CompareChunk, "done": CompareDone, "error": CompareError},
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/blind-pairs",
        BlindPairs,
        "one prompt to two of the deployment's models (the pair with the fewest votes), answers shown as A and B "
        "with the models hidden until the vote",
        request=BlindPairRequest,
        response=BlindPair,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/votes",
        Votes,
        "a deployment's blind votes and judge verdicts, oldest first",
        response=DataList[Vote],
        query={**PLATFORM_QUERY, "source": SOURCE_QUERY},
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/votes",
        Votes,
        "vote on a blind pair (pair_id; the answer reveals the models) or on two named models; the voter is you",
        request=VoteRequest,
        response=Vote,
        status=201,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/votes/export",
        VotesExport,
        "every vote and verdict as a file: JSON lines (format=jsonl, the default) or CSV (format=csv)",
        response=dict,
        query={
            **PLATFORM_QUERY,
            "source": SOURCE_QUERY,
            "format": {"description": "jsonl or csv", "type": "string", "enum": ["jsonl", "csv"]},
        },
        media_types=("application/x-ndjson", "text/csv"),
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/votes/{vote_id}",
        OneVote,
        "one vote or verdict",
        response=Vote,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/leaderboard",
        LeaderboardHandler,
        "Bradley-Terry strengths on the Elo scale with 95 % bootstrap intervals, win-rate matrix and comparisons "
        "per pair, from votes, judge verdicts or both",
        response=Leaderboard,
        query={
            **PLATFORM_QUERY,
            "source": {**SOURCE_QUERY, "default": "votes"},
            "resamples": {
                "description": "bootstrap resamples (default 200)",
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_RESAMPLES,
            },
        },
    ),
    Route(
        "PUT",
        "deployments/{deployment_id}/scaling",
        DeploymentScaling,
        "change a live deployment's instance count, autoscaling policy or bandwidth (409 where the platform cannot)",
        request=ScalingChange,
        response=Deployment,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "deployments/{deployment_id}/metrics",
        DeploymentMetricsHandler,
        "per-model requests, errors, TTFT p50/p95, tokens/s, in-flight and replicas over a window, with series",
        response=DeploymentMetrics,
        query={
            **PLATFORM_QUERY,
            "window": "seconds or 5m, 1h, 1d (default 300; at most 1d on the local platform, 14d on OCI)",
        },
    ),
    Route(
        "GET",
        "evaluations",
        Evaluations,
        "evaluations (local and oci, ADS-made ones included; 409 on bundled)",
        response=DataList[Evaluation],
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "evaluations",
        Evaluations,
        "evaluate a deployment's models on a dataset: every model as one comparison, or model_parameters.model; "
        "returns at once, ACCEPTED (oci: an evaluation model + job + job run per model, as ADS stores them)",
        request=EvaluationSpec,
        response=Evaluation,
        status=201,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "evaluations/metrics",
        SupportedMetrics,
        "the metrics an evaluation accepts, with their args",
        response=DataList[MetricDescription],
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "evaluations/config",
        EvaluationConfigHandler,
        "defaults for an evaluation form: model parameters, metrics, where reports go on this machine",
        response=EvaluationConfig,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "evaluations/datasets",
        DatasetUploads,
        "store a JSONL dataset sent as text on the server's machine (every bad row → 422 naming its line); "
        "its dataset_path goes into POST evaluations",
        request=DatasetUploadRequest,
        response=UploadedDataset,
        status=201,
        query=PLATFORM_QUERY,
        body_limit=MAX_UPLOAD_BYTES,
    ),
    Route(
        "GET",
        "datasets",
        Datasets,
        "the datasets on the server's machine, saved from chats or uploaded: rows, bytes, rows per category",
        response=DataList[SavedDataset],
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "datasets/{name}/rows",
        DatasetRows,
        "Save as dataset row: append a prompt and the answer kept as its reference to the dataset <name> (made on "
        "first use; the row checked as an evaluation checks it; a dataset past an evaluation's row or size cap: 422)",
        request=DatasetRow,
        response=SavedDataset,
        status=201,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "datasets/{name}",
        OneDataset,
        "download a dataset as its JSONL file",
        response=dict,
        query=PLATFORM_QUERY,
        media_types=("application/x-ndjson",),
    ),
    Route(
        "GET",
        "evaluations/{evaluation_id}",
        OneEvaluation,
        "an evaluation's state and per-model progress (poll it while IN_PROGRESS)",
        response=Evaluation,
        query=PLATFORM_QUERY,
    ),
    Route(
        "DELETE",
        "evaluations/{evaluation_id}",
        OneEvaluation,
        "stop and forget an evaluation (its report files stay)",
        response=Evaluation,
        query=PLATFORM_QUERY,
    ),
    Route(
        "POST",
        "evaluations/{evaluation_id}/cancel",
        CancelEvaluation,
        "stop a running evaluation",
        response=Evaluation,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "evaluations/{evaluation_id}/status",
        EvaluationStatusHandler,
        "state, per-model rows done/total and ETA (the light poll while IN_PROGRESS)",
        response=EvaluationStatus,
        query=PLATFORM_QUERY,
    ),
    Route(
        "GET",
        "evaluations/{evaluation_id}/metrics",
        EvaluationMetricsHandler,
        "per model the report's summary lines and each score's median/mean/SD/min/max (409 until SUCCEEDED)",
        response=EvaluationMetrics,
        query={**PLATFORM_QUERY, "model": "only this served name"},
    ),
    Route(
        "GET",
        "evaluations/{evaluation_id}/report",
        EvaluationReport,
        "a model's report.json (or report.html with format=html), or without model the comparison of every model",
        response=dict,
        query={**PLATFORM_QUERY, "model": "a served name", "format": "json (default) or html"},
        media_types=("application/json", "text/html"),
    ),
    # ADS's extension (ads/aqua/extension/evaluation_handler.py): its own answer shapes and verbs
    Route(
        "GET",
        "evaluation/{evaluation_id}/report",
        AdsEvaluationReport,
        "ADS's {evaluation_id, content}: the comparison report.html (or one model's) base64-encoded",
        response=EvaluationReportContent,
        query={**PLATFORM_QUERY, "model": "a served name"},
    ),
    Route(
        "PUT",
        "evaluation/{evaluation_id}/cancel",
        AdsCancelEvaluation,
        "stop a running evaluation (ADS-compatible path and verb)",
        response=Evaluation,
        query=PLATFORM_QUERY,
    ),
    Route("GET", "openapi.json", OpenApi, "this document", response=dict),
]

#: ADS's extension serves these verbs under ``evaluation/…``: the same handlers answer there
ADS_EVALUATION_ALIASES = [
    ("GET", "evaluations"),
    ("POST", "evaluations"),
    ("GET", "evaluations/metrics"),
    ("GET", "evaluations/config"),
    ("GET", "evaluations/{evaluation_id}"),
    ("DELETE", "evaluations/{evaluation_id}"),
    ("GET", "evaluations/{evaluation_id}/status"),
    ("GET", "evaluations/{evaluation_id}/metrics"),
]
_OURS = {(r.method, r.path): r for r in ROUTES}
ROUTES[-1:-1] = [  # before openapi.json, in our order: fixed paths ahead of {evaluation_id}
    replace(
        _OURS[key],
        path="evaluation" + _OURS[key].path.removeprefix("evaluations"),
        summary=f"{_OURS[key].summary} (ADS-compatible path)",
    )
    for key in ADS_EVALUATION_ALIASES
]


def handlers() -> list[tuple[str, type[AquaLabHandler]]]:
    """Tornado (pattern, handler) pairs under ``aqua/``, one per URL (more specific ones first)."""
    seen: dict[str, type[AquaLabHandler]] = {}
    for route in ROUTES:  # listed so that fixed paths (deployments/shapes) precede deployments/{id}
        seen.setdefault(route.pattern, route.handler)
    return [(f"aqua/{pattern}", handler) for pattern, handler in seen.items()]
