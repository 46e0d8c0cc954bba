"""The service's async face, for code on an event loop (the Jupyter server's handlers).

Every verb of :class:`~.facade.AquaLabService` as a coroutine: blocking verbs run through
:func:`~.executor.execute` (the one executor choice), chat verbs are async already and pass
through.  A handler reads ``await svc.get_deployment(id)`` and never sees a thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..domain import (
    CapacityInputs,
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentSpec,
    Evaluation,
    EvaluationSpec,
    ModelInput,
    ModelState,
    Plan,
    Shape,
    ValidatedDeployment,
)
from .executor import execute
from .facade import AquaLabService


class AsyncAquaLabService:
    def __init__(self, service: AquaLabService):
        self.sync = service

    @property
    def platform_name(self) -> str:
        return self.sync.platform_name

    # catalog and planning -------------------------------------------------------------------------

    async def shapes(self) -> list[Shape]:
        return await execute(self.sync.shapes)

    async def models(self) -> list[CatalogModel]:
        return await execute(self.sync.models)

    async def register_model(
        self, path: str, name: str | None = None, base_model_id: str | None = None
    ) -> CatalogModel:
        return await execute(self.sync.register_model, path, name, base_model_id)

    async def unregister_model(self, model_id: str) -> CatalogModel:
        return await execute(self.sync.unregister_model, model_id)

    async def model_input(self, model_id: str) -> ModelInput:
        return await execute(self.sync.model_input, model_id)

    async def plan(
        self,
        model_ids: Sequence[str],
        primary_model_id: str | None = None,
        shape: str | None = None,
        capacity: CapacityInputs | None = None,
    ) -> Plan:
        return await execute(self.sync.plan, model_ids, primary_model_id, shape, (), capacity)

    async def validate(self, spec: DeploymentSpec) -> ValidatedDeployment:
        return await execute(self.sync.validate, spec)

    # deployments ----------------------------------------------------------------------------------

    async def create_deployment(self, spec: DeploymentSpec) -> Deployment:
        return await execute(self.sync.create_deployment, spec)

    async def list_deployments(self) -> list[Deployment]:
        return await execute(self.sync.list_deployments)

    async def get_deployment(self, deployment_id: str) -> Deployment:
        return await execute(self.sync.get_deployment, deployment_id)

    async def update_deployment(self, deployment_id: str, spec: DeploymentSpec) -> Deployment:
        return await execute(self.sync.update_deployment, deployment_id, spec)

    async def activate(self, deployment_id: str) -> Deployment:
        return await execute(self.sync.activate, deployment_id)

    async def deactivate(self, deployment_id: str) -> Deployment:
        return await execute(self.sync.deactivate, deployment_id)

    async def delete(self, deployment_id: str) -> Deployment:
        return await execute(self.sync.delete, deployment_id)

    async def model_states(self, deployment_id: str) -> list[ModelState]:
        return await execute(self.sync.model_states, deployment_id)

    async def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        return await execute(self.sync.logs, deployment_id, model_name, lines)

    async def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        return await execute(self.sync.create_evaluation, spec)

    # chat -----------------------------------------------------------------------------------------

    def chat_events(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[str]:
        return self.sync.chat_events(deployment_id, request)

    def chat_stream(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[dict[str, Any]]:
        return self.sync.chat_stream(deployment_id, request)

    async def chat(self, deployment_id: str, request: ChatRequest) -> dict[str, Any]:
        return await self.sync.chat(deployment_id, request)

    def compare(self, deployment_id: str, request: CompareRequest) -> AsyncIterator[dict[str, Any]]:
        return self.sync.compare(deployment_id, request)
