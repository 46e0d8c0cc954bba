"""The URLs under ``<base_url>aqua/``: one row per verb, with what it takes and returns.

Each row's path template (``deployments/{deployment_id}``) is the OpenAPI path and, with its
parameters turned into named groups, the tornado pattern — so ``openapi.json`` and the server
cannot disagree.  A parameter matches one path segment unless :data:`PARAM_PATTERNS` says
otherwise (model ids contain slashes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel
from tornado import web

from ..domain import (
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentConfig,
    DeploymentSpec,
    ModelState,
    Plan,
    Shape,
    ValidationResult,
)
from .handlers import (
    Activate,
    AdsDeploymentConfig,
    AquaLabHandler,
    Chat,
    Compare,
    Deactivate,
    DeploymentLogs,
    Deployments,
    ModelConfig,
    Models,
    ModelStates,
    OneDeployment,
    OneModel,
    Plans,
    Platforms,
    Shapes,
    Validate,
)
from .models import DataList, Logs, PlanRequest, PlatformInfo, RegisterModelRequest
from .openapi import openapi_document
from .paths import template_pattern

PARAM_PATTERNS = {"model_id": ".+", "model_ids": ".+"}


def pattern_of(path: str) -> str:
    """The tornado regex of a path template (model ids may contain slashes)."""
    return template_pattern(path, PARAM_PATTERNS)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template under aqua/
    handler: type[AquaLabHandler]
    summary: str
    request: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    stream: bool = False

    @property
    def pattern(self) -> str:
        return pattern_of(self.path)


class OpenApi(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(openapi_document(ROUTES, self.settings.get("base_url", "/")))


PLATFORM_QUERY = {"platform": "platform to use (default: the server's c.AquaLab.platform)"}

ROUTES = [
    Route(
        "GET",
        "platforms",
        Platforms,
        "platforms and which is the default",
        response=DataList[PlatformInfo],
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
        query={**PLATFORM_QUERY, "model_name": "a served name", "lines": "how many lines (default 200)"},
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
    ),
    Route(
        "POST",
        "deployments/{deployment_id}/compare",
        Compare,
        "one prompt to several models, streamed side by side (data: {model, chunk}; event: done|error)",
        request=CompareRequest,
        query=PLATFORM_QUERY,
        stream=True,
    ),
    Route("GET", "openapi.json", OpenApi, "this document", response=dict),
]


def handlers() -> list[tuple[str, type[AquaLabHandler]]]:
    """Tornado (pattern, handler) pairs under ``aqua/``, one per URL (more specific ones first)."""
    seen: dict[str, type[AquaLabHandler]] = {}
    for route in ROUTES:  # listed so that fixed paths (deployments/shapes) precede deployments/{id}
        seen.setdefault(route.pattern, route.handler)
    return [(f"aqua/{pattern}", handler) for pattern, handler in seen.items()]
