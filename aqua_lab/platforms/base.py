"""The verbs every platform offers, so the service, REST, widgets and CLI do not care which runs."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..domain import Architecture, CatalogModel, Deployment, DeploymentConfig, ModelState, Shape, ValidatedDeployment


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


@runtime_checkable
class ArchitectureSource(Protocol):
    """Optional: a platform that can read a model's architecture (its ``config.json``, GGUF or
    safetensors headers) for the memory model.  Without it, the bundled table of service models
    is used by name."""

    def get_model_architecture(self, model_id: str) -> Architecture | None: ...
