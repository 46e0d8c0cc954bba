"""The verbs every platform offers, so the service, REST, widgets and CLI do not care which runs."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..domain import (
    CatalogModel,
    Deployment,
    DeploymentConfig,
    Evaluation,
    EvaluationSpec,
    ModelState,
    Shape,
    ValidatedDeployment,
)


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
class EvaluationRuns(Protocol):
    """Optional capability: the platform runs evaluations itself and keeps them (the local platform:
    a detached job per evaluation, every chosen model scored on the same dataset).  The service
    refuses with a 409 on a platform without it."""

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation: ...

    def list_evaluations(self) -> list[Evaluation]: ...

    def get_evaluation(self, evaluation_id: str) -> Evaluation: ...

    def cancel_evaluation(self, evaluation_id: str) -> Evaluation: ...

    def delete_evaluation(self, evaluation_id: str) -> Evaluation: ...

    def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        """A model's report (``fmt``: json or html), or without ``model`` the comparison of all."""
        ...
