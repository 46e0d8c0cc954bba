"""The verbs every platform offers, so the service, REST, widgets and CLI do not care which runs."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..domain import (
    CatalogModel,
    Deployment,
    DeploymentConfig,
    DeploymentMetrics,
    DeploymentSpec,
    ModelState,
    Shape,
    ValidatedDeployment,
)
from ..errors import Unsupported


@runtime_checkable
class Platform(Protocol):
    name: str
    #: key of the container parameters in this platform's deployment configs (VLLM_PARAMS …)
    params_key: str

    def list_shapes(self) -> list[Shape]: ...

    def list_models(self) -> list[CatalogModel]: ...

    def get_model(self, model_id: str) -> CatalogModel: ...

    def get_model_config(self, model_id: str) -> DeploymentConfig | None: ...

    def create_deployment(self, deployment: ValidatedDeployment) -> Deployment: ...

    def list_deployments(self) -> list[Deployment]: ...

    def get_deployment(self, deployment_id: str) -> Deployment: ...

    def activate(self, deployment_id: str) -> Deployment: ...

    def deactivate(self, deployment_id: str) -> Deployment: ...

    def delete(self, deployment_id: str) -> Deployment: ...

    def model_states(self, deployment_id: str) -> list[ModelState]: ...

    #: whether inference_request signs (and may block on a token refresh): then it runs in an executor
    signs_requests: bool

    def inference_request(self, deployment: Deployment, route: str, body: bytes, stream: bool) -> tuple[str, dict]:
        """URL and headers for an OpenAI ``route`` call carrying exactly ``body``."""
        ...

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str: ...


# --------------------------------------------------------------------------------------------------
# Optional capabilities.  A platform has one when it implements the protocol; the service asks
# `require(...)`, which raises the typed refusal (Unsupported → 409) naming why and what to use.


@runtime_checkable
class Scales(Protocol):
    """Runs a deployment's scaling policy and changes it on a live deployment."""

    #: the policy types this platform runs ("FIXED_SIZE", "AUTOSCALING")
    scaling_policies: tuple[str, ...]

    def scaling_refusal(self, spec: DeploymentSpec) -> Unsupported | None:
        """Why this platform cannot run ``spec``'s scaling (None when it can)."""
        ...

    def update_scaling(
        self, deployment_id: str, scaling_policy: dict[str, Any] | None, bandwidth_mbps: int | None
    ) -> Deployment: ...


@runtime_checkable
class Measures(Protocol):
    """Reports per-model metrics of a deployment (requests, errors, TTFT, tokens/s, in-flight, replicas)."""

    def deployment_metrics(self, deployment_id: str, window_s: float) -> DeploymentMetrics: ...


def require(platform: Platform, capability: type, cannot: str, why: str, use: str) -> Any:
    """``platform`` as ``capability``, or the refusal that says it cannot."""
    if not isinstance(platform, capability):
        raise Unsupported(platform.name, cannot, why, use)
    return platform
